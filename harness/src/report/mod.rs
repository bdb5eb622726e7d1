//! Placeholder for `harness report`.

#[derive(Debug, clap::Args)]
pub struct ReportArgs {}

pub fn main(_args: ReportArgs) -> anyhow::Result<()> {
    anyhow::bail!("'harness report' is not written yet")
}
