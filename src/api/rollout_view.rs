//! `herald rollout status` as text: a rollout, its waves as bars, and one-line summaries.

use std::fmt::Write;

use super::types::{NodesJson, RolloutJson, WaveJson};

/// Characters in a wave's bar.
const BAR: u64 = 20;

/// One line: id, state, commit, nodes, wave and totals.
pub fn summary(r: &RolloutJson) -> String {
    let wave = r
        .progress
        .get(r.wave as usize)
        .map_or("-", |w| w.label.as_str());
    let mut line = format!(
        "{} {} commit={} nodes={} wave={} published={}/{} applied={} failed={}",
        r.id,
        r.state,
        r.commit,
        nodes(&r.nodes),
        wave,
        r.total.published,
        r.total.nodes,
        r.total.applied,
        r.total.failed
    );
    if let Some(reason) = &r.reason {
        let _ = write!(line, " reason={reason:?}");
    }
    line
}

/// The summary, then one line per wave with a bar of its applied, failed and pending nodes.
pub fn render(r: &RolloutJson) -> String {
    let mut out = summary(r);
    out.push('\n');
    for (i, w) in r.progress.iter().enumerate() {
        let mark = if i as u32 == r.wave { '>' } else { ' ' };
        let _ = writeln!(
            out,
            "{mark} {:>7} [{}] {}/{} published, {} applied, {} failed",
            w.label,
            bar(w),
            w.published,
            w.nodes,
            w.applied,
            w.failed
        );
    }
    out
}

fn nodes(n: &NodesJson) -> String {
    match n {
        NodesJson::Pattern(p) => p.clone(),
        NodesJson::List(l) if l.len() <= 3 => l.join(","),
        NodesJson::List(l) => format!("{},… ({} nodes)", l[..3].join(","), l.len()),
    }
}

/// `#` applied, `x` failed, `-` published and waiting, `.` not published.
fn bar(w: &WaveJson) -> String {
    if w.nodes == 0 {
        return " ".repeat(BAR as usize);
    }
    let cells = |n: u64| (n * BAR).div_ceil(w.nodes).min(BAR);
    let applied = cells(w.applied);
    let failed = cells(w.failed).min(BAR - applied);
    let waiting = cells(w.published)
        .saturating_sub(applied + failed)
        .min(BAR - applied - failed);
    let rest = BAR - applied - failed - waiting;
    [
        "#".repeat(applied as usize),
        "x".repeat(failed as usize),
        "-".repeat(waiting as usize),
        ".".repeat(rest as usize),
    ]
    .concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wave(nodes: u64, published: u64, applied: u64, failed: u64) -> WaveJson {
        WaveJson {
            label: "10%".into(),
            nodes,
            published,
            applied,
            failed,
        }
    }

    #[test]
    fn bars_show_applied_failed_waiting_and_unpublished() {
        assert_eq!(bar(&wave(10, 10, 5, 1)), "##########xx--------");
        assert_eq!(bar(&wave(10, 0, 0, 0)), "....................");
        assert_eq!(bar(&wave(3, 3, 3, 0)), "####################");
        assert_eq!(bar(&wave(0, 0, 0, 0)).len(), 20);
    }
}
