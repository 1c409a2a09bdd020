from ftlit.cli import main

main()
