"""Generic building blocks of search, shared by the retrieval and reranking tasks and by ``ftlit serve``: pooling
token states into embeddings, ranking metrics, BM25, rank fusion, an encoder read from an export, and a corpus
embedded once. No task knowledge: tasks and tools import it, it imports only the core."""
