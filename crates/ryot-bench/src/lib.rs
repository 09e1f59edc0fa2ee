//! ryot-bench: see README.md.
