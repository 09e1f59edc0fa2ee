//! The benchmark's error type.

/// An error while preparing or running a benchmark.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// A kernel rejected its inputs.
    #[error(transparent)]
    Kernel(#[from] ryot_kernels::KernelError),
    /// A block format could not be written.
    #[error(transparent)]
    Quant(#[from] ryot_quant::QuantError),
    /// The bandwidth probe could not be set up.
    #[error("bandwidth probe: {0}")]
    Probe(String),
    /// A file could not be read or written.
    #[error("{0}")]
    Io(String),
    /// An unknown weight type or bad option.
    #[error("{0}")]
    Config(String),
}
