//! ryot-machine: see README.md.
