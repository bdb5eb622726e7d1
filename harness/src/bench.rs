//! Placeholder for `harness bench`.

#[derive(Debug, clap::Args)]
pub struct BenchArgs {}

pub fn main(_args: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("'harness bench' is not written yet")
}
