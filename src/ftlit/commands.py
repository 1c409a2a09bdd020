"""The ``ftlit`` command's dispatch: ftlit's tools (inspect, compare, tune, export, serve, mine) beside the Lightning
subcommands that ``build_cli`` runs (fit, validate, test, predict; see ftlit.cli), and the one way every command
ends: a problem the user can fix as one line and its exit code."""

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import yaml
from lightning import Callback

from ftlit.errors import FtlitError, TrainingInterrupted
from ftlit.machine import use_tf32
from ftlit.training.interrupts import stops_handled
from ftlit.training.locks import release_held

#: ``build_cli(args, run=True, callbacks=())``: the Lightning CLI on ``args`` (ftlit.cli.build_cli)
BuildCli = Callable[..., object]


def inspect_command(args: list[str], build_cli: BuildCli) -> int:
    """``ftlit inspect --config X [--plot lengths.png] [--data.key value ...]``: no training; exit 1 if a check
    fails."""
    from ftlit.tools.inspection import format_reports, inspect_data, plot_lengths

    parser = argparse.ArgumentParser(prog="ftlit inspect", description=inspect_command.__doc__, add_help=False)
    parser.add_argument("--plot", type=Path, help="write a histogram of token lengths to this PNG")
    known, rest = parser.parse_known_args(args)
    cli = build_cli(rest, run=False)
    reports, problems = inspect_data(cli.datamodule)
    print(format_reports(reports, problems))
    if known.plot:
        plot_lengths(reports, known.plot)
        print(f"Length histogram written to {known.plot}")
    return 1 if problems or any(report.problems for report in reports) else 0


def compare_command(args: list[str], build_cli: BuildCli) -> int:
    from ftlit.tools.comparison import main as compare

    return compare(args)


def tune_command(args: list[str], build_cli: BuildCli) -> int:
    try:
        from ftlit.tools.tuning import main as tune
    except ImportError as err:  # an optional extra
        raise FtlitError(f"ftlit tune needs Optuna ({err}): pip install 'ftlit[tune]'.") from err

    def run_trial_fit(arguments: list[str], callbacks: Sequence[Callback]) -> None:
        """A trial's ``fit``: a problem with the trial's values surfaces as the FtlitError behind it (jsonargparse
        wraps those raised while instantiating), which the study records as a failed trial."""
        try:
            build_cli(arguments, callbacks=callbacks)
        except Exception as err:
            user_error = find_user_error(err)
            if user_error is None or user_error is err:
                raise
            raise user_error from err

    return tune(args, run_trial_fit)


def export_command(args: list[str], build_cli: BuildCli) -> int:
    from ftlit.tools.export import main as export

    return export(args, partial(build_cli, run=False))


def mine_command(args: list[str], build_cli: BuildCli) -> int:
    from ftlit.tools.mining import main as mine

    return mine(args)


def serve_command(args: list[str], build_cli: BuildCli) -> int:
    try:
        from ftlit.tools.serve import main as serve
    except ImportError as err:  # an optional extra
        raise FtlitError(f"ftlit serve needs LitServe ({err}): pip install 'ftlit[serve]'.") from err
    return serve(args, partial(build_cli, run=False))  # (a partial pickles: LitServe's workers receive it)


#: The tools, as ``ftlit <subcommand> --help`` lists them after the subcommands
TOOLS_HELP = (
    "Also: `ftlit inspect --config X [--plot lengths.png]` (the data, no training), "
    "`ftlit compare RUN_DIR... [--output_dir D]` (finished runs side by side) and "
    "`ftlit tune --config X [--tune.n_trials N]` (hyperparameter search over the config's tune: section) "
    "and `ftlit export RUN --format onnx [--quantize int8]` (ONNX, checked against PyTorch) and "
    "`ftlit serve EXPORT [--port 8000]` (an HTTP server on LitServe; a retriever with --corpus FILE: search and "
    "answers over a corpus) and "
    "`ftlit mine RETRIEVER --pairs FILE --output OUT.jsonl` (hard negatives for reranking, mined by a retriever)."
)

COMMANDS = {
    "inspect": inspect_command,
    "compare": compare_command,
    "tune": tune_command,
    "export": export_command,
    "serve": serve_command,
    "mine": mine_command,
}


def run_command(args: list[str], build_cli: BuildCli) -> None:
    """Runs ``ftlit <args>``: a tool of COMMANDS, or a Lightning subcommand through ``build_cli``. Problems the user
    can fix end with one clear message and exit code 2 (``--debug`` or ``FTLIT_DEBUG=1``: the traceback instead);
    SIGINT and SIGTERM, at any moment, with one line and exit code 130 / 143 (ftlit.training.interrupts)."""
    debug = "--debug" in args or os.environ.get("FTLIT_DEBUG") == "1"
    args = [arg for arg in args if arg != "--debug"]
    use_tf32()
    with stops_handled():
        try:
            if args and args[0] in COMMANDS:
                status = COMMANDS[args[0]](args[1:], build_cli)
                if status:
                    sys.exit(status)
            elif config_classes(args):
                help_with_config_classes(args, build_cli)
            else:
                build_cli(args)
        except Exception as err:
            user_error = find_user_error(err)
            if user_error is None or debug:
                raise
            kind = "stopped" if isinstance(user_error, TrainingInterrupted) else "error"
            if is_global_zero():  # every process of a multi-device run meets the same problem: said once
                print(f"ftlit: {kind}: {user_error}", file=sys.stderr)
            sys.exit(user_error.exit_code)
        finally:
            release_held()  # the output folders' locks, however the command ended


def config_classes(args: list[str]) -> dict[str, str]:
    """For ``ftlit <subcommand> --config X --help``: the model's and data's class paths that X names (by section),
    whose options LightningCLI's help leaves out (it lists ``--model CLASS`` alone). Empty for any other command."""
    if not {"-h", "--help"} & set(args) or "--config" not in args[:-1]:
        return {}
    try:
        config = yaml.safe_load(Path(args[args.index("--config") + 1]).read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}  # (the help itself then says what is wrong with the config)
    if not isinstance(config, dict):
        return {}
    sections = {section: config.get(section) for section in ("model", "data")}
    return {
        section: value if isinstance(value, str) else value["class_path"]
        for section, value in sections.items()
        if isinstance(value, str) or (isinstance(value, dict) and "class_path" in value)
    }


def help_with_config_classes(args: list[str], build_cli: BuildCli) -> None:
    """The subcommand's help, then the options of the config's model and data classes (``--model.help CLASS``)."""
    for arguments in [args] + [[args[0], f"--{section}.help", path] for section, path in config_classes(args).items()]:
        try:
            build_cli(arguments)
        except SystemExit as done:  # (each help ends the parser)
            if done.code:
                raise
        print()


def find_user_error(err: BaseException | None) -> FtlitError | None:
    """The FtlitError behind ``err`` (jsonargparse wraps errors raised while instantiating classes in a ValueError).
    An interrupt anywhere in the chain comes first: a Ctrl+C that broke a file read or an export, which reported
    it as their own failure, is why the command stopped."""
    first, seen = None, set()
    while err is not None and id(err) not in seen:
        if isinstance(err, TrainingInterrupted):
            return err
        first = first or (err if isinstance(err, FtlitError) else None)
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return first


def is_global_zero() -> bool:
    """Whether this is the first (or only) process of the run, from what the launchers set in each process's
    environment (Lightning's own: LOCAL_RANK and NODE_RANK; torchrun: RANK; SLURM's srun: SLURM_PROCID)."""
    for variable in ("RANK", "SLURM_PROCID"):
        if os.environ.get(variable, "").isdigit():
            return int(os.environ[variable]) == 0
    return all(int(os.environ.get(variable) or 0) == 0 for variable in ("NODE_RANK", "LOCAL_RANK"))
