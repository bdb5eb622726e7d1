//! Placeholder for `harness run`.

#[derive(Debug, clap::Args)]
pub struct RunArgs {}

pub fn main(_args: RunArgs) -> anyhow::Result<()> {
    anyhow::bail!("'harness run' is not written yet")
}
