//! Placeholder for `harness compare`.

#[derive(Debug, clap::Args)]
pub struct CompareArgs {}

pub fn main(_args: CompareArgs) -> anyhow::Result<()> {
    anyhow::bail!("'harness compare' is not written yet")
}
