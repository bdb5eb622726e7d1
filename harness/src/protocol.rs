//! What the load speaks to the server (`--protocol`): one small enum, so a
//! protocol is added here and in the load step that speaks it.

use serde::{Deserialize, Serialize};

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP: every byte echoed back, in order, no framing.
    #[default]
    Echo,
    /// UDP datagrams, each echoed whole to its sender and checked by flow
    /// and sequence number (`harness/src/load/udp.rs`).
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Echo => "echo",
            Protocol::Udp => "udp",
        }
    }
}
