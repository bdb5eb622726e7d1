//! The report's UDP section, for result sets with `--protocol udp` cells:
//! every such cell's datagrams by fate beside the kernel's drops, and a
//! chart of loss against the offered rate (the open-loop cells: where the
//! loss knee is). Throughput and system calls per datagram are the
//! report's ordinary sweep and system-call charts, which draw these cells
//! as any other.

use super::charts::{ChartBody, SweepChart, SweepPoint, SweepSeries, XScale};
use super::document::{Builder, Section, Table};
use super::groups::{Spread, figure};
use super::load::ResultSet;
use crate::results::cell::Shape;
use std::collections::BTreeMap;

pub(super) fn section(set: &ResultSet, builder: &mut Builder) -> Option<Section> {
    let cells: Vec<_> = set
        .cells
        .iter()
        .filter_map(|data| Some((&data.cell, data.cell.udp.as_ref()?)))
        .collect();
    if cells.is_empty() {
        return None;
    }
    let optional = |value: Option<u64>| value.map_or_else(|| "–".to_owned(), |value| value.to_string());
    let rows = cells
        .iter()
        .map(|(cell, udp)| {
            vec![
                cell.label.clone(),
                cell.scenario.clone(),
                figure(cell.msgs_per_sec),
                format!("{:.3}", udp.loss_percent),
                (udp.duplicated + udp.reordered).to_string(),
                (udp.wrong_payload + udp.wrong_sender + udp.truncated).to_string(),
                optional(udp.kernel_rcvbuf_errors),
                optional(udp.server_socket_drops),
                udp.client_socket_drops.to_string(),
                cell.server
                    .as_ref()
                    .and_then(|server| server.syscalls.per_msg_total)
                    .map_or_else(|| "–".to_owned(), figure),
            ]
        })
        .collect();
    // Loss against offered rate: one line per label, the repeats' spread.
    let mut by_label: BTreeMap<&str, BTreeMap<u64, Vec<f64>>> = BTreeMap::new();
    for (cell, udp) in &cells {
        if let (Shape::Open, Some(rate)) = (cell.shape, cell.rate) {
            by_label
                .entry(cell.label.as_str())
                .or_default()
                .entry(rate as u64)
                .or_default()
                .push(udp.loss_percent);
        }
    }
    let mut charts = Vec::new();
    if !by_label.is_empty() {
        let series = by_label
            .into_iter()
            .map(|(label, rates)| SweepSeries {
                label: label.to_owned(),
                style: builder.labels.style(label),
                points: rates
                    .into_iter()
                    .filter_map(|(rate, losses)| {
                        Some(SweepPoint {
                            x: rate as f64,
                            y: Spread::of(losses)?,
                            flagged: false,
                        })
                    })
                    .collect(),
            })
            .collect();
        charts.push(builder.add_chart(
            "udp-loss",
            "UDP: datagrams lost against the offered rate (open loop)".to_owned(),
            ChartBody::Sweep(SweepChart {
                x_label: "offered datagrams per second".to_owned(),
                x_scale: XScale::Log,
                y_label: "lost (%)".to_owned(),
                y_log: false,
                series,
                second: None,
                references: Vec::new(),
            }),
        ));
    }
    Some(Section {
        id: "udp".to_owned(),
        title: "UDP: datagrams by fate".to_owned(),
        paragraphs: vec![
            "Each datagram carries its flow and sequence number, and every echo is checked: \
             throughput counts the datagrams that came back whole, from the server, once. \
             Loss is a figure, not an error (UDP may drop); it is read beside the kernel's own \
             counters over the window: receive-buffer drops on the whole machine, drops on the \
             server's sockets, and drops on the load generator's own sockets (non-zero: the \
             instrument lost them, and the cell is flagged client-dropped)."
                .to_owned(),
        ],
        charts,
        table: Some(Table {
            headers: [
                "label",
                "scenario",
                "datagrams/s",
                "lost %",
                "duplicated + reordered",
                "wrong (payload, sender, length)",
                "kernel rcvbuf drops",
                "server socket drops",
                "client drops",
                "syscalls/datagram",
            ]
            .map(str::to_owned)
            .to_vec(),
            rows,
        }),
    })
}
