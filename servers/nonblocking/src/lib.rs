//! Placeholder: the nonblocking model is not written yet.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Options {}
pub fn serve(_listener: std::net::TcpListener, _options: &Options) -> std::io::Result<()> {
    Err(std::io::Error::other("not written yet"))
}
