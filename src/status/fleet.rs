//! The fleet page `/`: summary counts, a filter form, and one row per probed address (failing
//! first, then soonest expiry), with the targets' user labels as columns.
//!
//! Filter, sort and row limit are query parameters, so the page works without scripts and a
//! refresh keeps them; the script `html` adds only swaps in a fresh copy of the page's live
//! part. The per-target page is `target`'s; escaping and the frame are `html`'s.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::fmt::Write;
use std::sync::Arc;

use serde::Deserialize;

use super::dates::{self, Rfc3339};
use super::expiry::{Expiry, Urgency};
use super::html::{self, Esc, Scripts, Url};
use crate::files::FileSet;
use crate::state::{Entry, Probed};
use crate::verdict::FailureReason;

/// Rows the page shows unless `?limit=` asks otherwise (`limit=all`: every row).
pub(crate) const DEFAULT_ROWS: usize = 500;
/// Seconds between refreshes of the page's live part.
pub(crate) const REFRESH_SECS: u32 = 30;

/// The fleet page's query parameters; every one is optional and an empty one is unset.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub(crate) struct FleetQuery {
    /// Part of a target's name or address, any case.
    pub name: String,
    /// `key=value`: the target has label `key` with exactly that value; `key`: it has the
    /// label at all.
    pub label: String,
    /// A failure reason (`expired`, `connection_refused`, …): rows failing with it.
    pub reason: String,
    /// `healthy`, `failing`, `pending`, `expiring` (warning or critical) or `critical`.
    pub status: String,
    /// Column to sort by: `name`, `address`, `result`, `reason`, `expiry`, `certificate`,
    /// `tls`, `probe`, or `label.KEY`; unset: failing first, then soonest expiry.
    pub sort: String,
    /// `desc` reverses the sort column.
    pub order: String,
    /// Rows to show: a number, or `all`.
    pub limit: String,
    /// Present (`?debug`): the page reports its own scroll width (for the browser test).
    pub debug: Option<String>,
}

/// The page for the `entries` of a snapshot, at `now` (unix seconds).
pub(crate) fn render(entries: &[Arc<Entry>], files: &FileSet, q: &FleetQuery, now: i64) -> String {
    let mut rows: Vec<Row<'_>> = Vec::with_capacity(entries.len());
    for en in entries {
        Row::push_all(&mut rows, en, now);
    }
    let summary = Summary::of(&rows);
    let label_keys = label_keys(entries);
    let filter = Filter::parse(q);
    rows.retain(|r| filter.keeps(r));
    let limit = match q.limit.as_str() {
        "all" => usize::MAX,
        n => n.parse().ok().filter(|n| *n > 0).unwrap_or(DEFAULT_ROWS),
    };
    let shown = rows.len().min(limit);
    // Only the rows shown need their order: partition them off first (linear), then sort.
    let sort = Sort::parse(q);
    if shown > 0 && shown < rows.len() {
        rows.select_nth_unstable_by(shown - 1, |a, b| sort.cmp(a, b));
    }
    if let Some(top) = rows.get_mut(..shown) {
        top.sort_unstable_by(|a, b| sort.cmp(a, b));
    }

    let scripts = Scripts {
        refresh_secs: REFRESH_SECS,
        debug: q.debug.is_some(),
    };
    let mut out = String::with_capacity(8192 + shown * 700);
    html::open(&mut out, "TLS endpoints", scripts);
    summary.render(&mut out, q);
    filter_form(&mut out, q);
    out.push_str("<div id=\"live\">");
    let cols = label_keys.len() + 8;
    out.push_str("<table>\n");
    columns(&mut out, label_keys.len());
    out.push_str("<thead><tr>");
    header(&mut out, q, "name", "target");
    header(&mut out, q, "address", "address");
    for k in &label_keys {
        header(&mut out, q, &format!("label.{k}"), k);
    }
    for (key, title) in [
        ("result", "result"),
        ("reason", "reason"),
        ("expiry", "expires in"),
        ("certificate", "leaf certificate"),
        ("tls", "TLS"),
        ("probe", "last probe"),
    ] {
        header(&mut out, q, key, title);
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for r in rows.iter().take(shown) {
        r.render(&mut out, &label_keys, now);
    }
    if rows.is_empty() {
        let _ = writeln!(
            out,
            "<tr><td colspan=\"{cols}\" class=\"muted\">{}</td></tr>",
            if entries.is_empty() {
                "No targets are configured."
            } else {
                "No target matches the filter."
            }
        );
    }
    out.push_str("</tbody></table>\n<p class=\"note\">");
    let _ = write!(
        out,
        "Showing {shown} of {} rows ({} targets configured). ",
        rows.len(),
        entries.len()
    );
    if shown < rows.len() {
        let _ = write!(
            out,
            "<a id=\"show-all\" href=\"/{}\">Show all {} rows</a>. ",
            query(q, &[("limit", "all")]),
            rows.len()
        );
    }
    let _ = writeln!(
        out,
        "Updated <time datetime=\"{t}\">{t}</time>; refreshes every {REFRESH_SECS} s.</p>",
        t = Rfc3339(now)
    );
    super::cert_files::render(&mut out, files, now);
    out.push_str("</div>");
    html::close(&mut out, scripts);
    out
}

/// Column widths, so the table fits its window (from 1,000 px) however many label columns and
/// however long the names: the short columns (result, expires in, TLS, last probe) keep a fixed
/// share, the others split the rest by weight.
fn columns(out: &mut String, labels: usize) {
    const FIXED_PCT: f64 = 6.5 + 10.0 + 7.5 + 8.5;
    // target, address, reason, leaf certificate; each label weighs 1.5.
    let total = 3.0 + 3.0 + 3.5 + 2.5 + 1.5 * labels as f64;
    let share = |weight: f64| weight / total * (100.0 - FIXED_PCT);
    let mut widths = vec![share(3.0), share(3.0)];
    widths.extend(std::iter::repeat_n(share(1.5), labels));
    widths.extend([6.5, share(3.5), 10.0, share(2.5), 7.5, 8.5]);
    out.push_str("<colgroup>");
    for pct in widths {
        let _ = write!(out, "<col style=\"width:{pct:.1}%\">");
    }
    out.push_str("</colgroup>\n");
}

/// Every user label name of the fleet, sorted: one column each.
fn label_keys(entries: &[Arc<Entry>]) -> BTreeSet<&str> {
    let mut keys = BTreeSet::new();
    let mut previous: Option<&[(String, String)]> = None;
    for en in entries {
        let labels = en.target.labels.as_slice();
        // Fleets mostly repeat one label set: skip a target whose names are the previous one's.
        let same = previous.is_some_and(|p| {
            p.len() == labels.len() && p.iter().zip(labels).all(|(a, b)| a.0 == b.0)
        });
        if !same {
            keys.extend(labels.iter().map(|(k, _)| k.as_str()));
            previous = Some(labels);
        }
    }
    keys
}

/// One address's latest outcome (or a target not probed yet), with what sorting needs.
struct Row<'a> {
    en: &'a Entry,
    probed: Option<&'a Probed>,
    health: Health,
    reason: Option<FailureReason>,
    expiry: Option<Expiry>,
    urgency: Urgency,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Health {
    Failing,
    Pending,
    Ok,
}

impl Health {
    fn as_str(self) -> &'static str {
        match self {
            Health::Failing => "failing",
            Health::Pending => "pending",
            Health::Ok => "ok",
        }
    }
}

impl<'a> Row<'a> {
    /// Appends a row per address of the entry's latest probe, or one pending row.
    fn push_all(rows: &mut Vec<Row<'a>>, en: &'a Entry, now: i64) {
        if en.latest.is_empty() {
            rows.push(Row {
                en,
                probed: None,
                health: Health::Pending,
                reason: None,
                expiry: None,
                urgency: Urgency::Fine,
            });
        }
        for p in &en.latest {
            let reason = p.outcome.reason();
            let expiry = p.chain.as_deref().and_then(Expiry::of_chain);
            rows.push(Row {
                en,
                probed: Some(p),
                health: if reason.is_some() {
                    Health::Failing
                } else {
                    Health::Ok
                },
                reason,
                expiry,
                urgency: expiry.map_or(Urgency::Fine, |e| e.urgency(now)),
            });
        }
    }

    fn subject(&self) -> &'a str {
        let leaf = self
            .probed
            .and_then(|p| p.chain.as_deref())
            .and_then(|c| c.certs.iter().find(|(d, _)| *d == 0));
        leaf.map_or("", |(_, f)| f.subject.as_str())
    }

    fn version(&self) -> &'a str {
        self.probed
            .and_then(|p| p.outcome.negotiated.as_ref())
            .map_or("", |n| n.version)
    }

    fn finished(&self) -> Option<i64> {
        self.probed.map(|p| dates::unix(p.outcome.finished_at))
    }

    fn label(&self, key: &str) -> Option<&'a str> {
        let labels = &self.en.target.labels;
        labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn render(&self, out: &mut String, label_keys: &BTreeSet<&str>, now: i64) {
        let t = &self.en.target;
        let _ = write!(
            out,
            "<tr class=\"{}\" data-target=\"{}\"><td><a href=\"/target/{}\">{}</a></td><td>{}",
            self.health.as_str(),
            Esc(&t.name),
            Url(&t.name),
            Esc(&t.name),
            Esc(&t.address)
        );
        if let Some(ip) = self.probed.and_then(|p| p.ip) {
            let _ = write!(out, " ({ip})");
        }
        out.push_str("</td>");
        for k in label_keys {
            let _ = write!(out, "<td>{}</td>", Esc(self.label(k).unwrap_or("")));
        }
        let _ = write!(out, "<td class=\"result\">{}</td>", self.health.as_str());
        match self.probed.and_then(|p| p.outcome.failure.as_ref()) {
            Some(f) => {
                let _ = write!(
                    out,
                    "<td title=\"{d}\">{}<div class=\"detail\">{d}</div></td>",
                    f.reason.as_label(),
                    d = Esc(&f.detail)
                );
            }
            None => out.push_str("<td></td>"),
        }
        match self.expiry {
            Some(e) => {
                let what = if e.above_leaf {
                    "a certificate above the leaf on the verified path expires"
                } else {
                    "leaf expires"
                };
                let _ = write!(
                    out,
                    "<td{}><time datetime=\"{at}\" title=\"{what} {at}\">{}{}</time></td>",
                    self.urgency.class_attr(),
                    dates::left(e.not_after, now),
                    if e.above_leaf { " (chain)" } else { "" },
                    at = Rfc3339(e.not_after),
                );
            }
            None => out.push_str("<td></td>"),
        }
        let _ = write!(
            out,
            "<td>{}</td><td>{}</td>",
            Esc(self.subject()),
            self.version()
        );
        match self.finished() {
            Some(at) => {
                let _ = writeln!(
                    out,
                    "<td><time datetime=\"{t}\" title=\"{t}\">{}</time></td></tr>",
                    dates::ago(at, now),
                    t = Rfc3339(at)
                );
            }
            None => out.push_str("<td class=\"muted\">never</td></tr>\n"),
        }
    }
}

/// Counts over every target (not only those the filter shows), each a link to its filter.
#[derive(Debug, Default)]
struct Summary {
    targets: usize,
    healthy: usize,
    failing: usize,
    pending: usize,
    expiring: usize,
    critical: usize,
    /// Targets failing with each reason (on any address), by `FailureReason::index`.
    reasons: [usize; FailureReason::ALL.len()],
}

impl Summary {
    /// From every row (all rows of one target are adjacent).
    fn of(rows: &[Row<'_>]) -> Summary {
        let mut s = Summary::default();
        for target in rows.chunk_by(|a, b| std::ptr::eq(a.en, b.en)) {
            s.targets += 1;
            let mut seen = [false; FailureReason::ALL.len()];
            let mut worst = Urgency::Fine;
            let mut health = Health::Ok;
            for r in target {
                if let Some(slot) = r.reason.and_then(|r| seen.get_mut(r.index())) {
                    *slot = true;
                }
                worst = worst.max(r.urgency);
                health = health.min(r.health);
            }
            for (count, seen) in s.reasons.iter_mut().zip(seen) {
                *count += usize::from(seen);
            }
            match health {
                Health::Failing => s.failing += 1,
                Health::Pending => s.pending += 1,
                Health::Ok => s.healthy += 1,
            }
            s.expiring += usize::from(worst >= Urgency::Warning);
            s.critical += usize::from(worst == Urgency::Critical);
        }
        s
    }

    fn render(&self, out: &mut String, q: &FleetQuery) {
        out.push_str("<ul class=\"summary\">");
        let status = |out: &mut String, id: &str, class: &str, n: usize, text: &str| {
            let on = if q.status == id { " on" } else { "" };
            let _ = write!(
                out,
                "<li><a id=\"count-{id}\" class=\"{class}{on}\" href=\"/{}\"><b>{n}</b>{text}</a></li>",
                query(q, &[("status", if q.status == id { "" } else { id })])
            );
        };
        let _ = write!(
            out,
            "<li><a id=\"count-targets\" href=\"/\"><b>{}</b>targets</a></li>",
            self.targets
        );
        status(out, "healthy", "healthy", self.healthy, "healthy");
        status(out, "failing", "failing", self.failing, "failing");
        if self.pending > 0 {
            status(out, "pending", "", self.pending, "not probed yet");
        }
        status(
            out,
            "expiring",
            "warn",
            self.expiring,
            "expiring (renewal overdue)",
        );
        status(
            out,
            "critical",
            "crit",
            self.critical,
            "expire within 2 days",
        );
        let mut by_reason: Vec<(FailureReason, usize)> = FailureReason::ALL
            .iter()
            .zip(self.reasons)
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| (*r, n))
            .collect();
        by_reason.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        for (r, n) in by_reason {
            let label = r.as_label();
            let on = if q.reason == label { " on" } else { "" };
            let _ = write!(
                out,
                "<li><a id=\"count-reason-{label}\" class=\"failing{on}\" href=\"/{}\"><b>{n}</b>{label}</a></li>",
                query(q, &[("reason", if on.is_empty() { label } else { "" })])
            );
        }
        out.push_str("</ul>\n");
    }
}

/// The filter form: plain GET, so it works without scripts; the sort is kept.
fn filter_form(out: &mut String, q: &FleetQuery) {
    let _ = write!(
        out,
        "<form class=\"filter\" method=\"get\" action=\"/\">\
         <label>name or address<input type=\"search\" name=\"name\" value=\"{}\" size=\"22\"></label>\
         <label>label<input type=\"search\" name=\"label\" value=\"{}\" size=\"16\" placeholder=\"key=value\"></label>\
         <label>reason<select name=\"reason\"><option value=\"\">any</option>",
        Esc(&q.name),
        Esc(&q.label)
    );
    for r in FailureReason::ALL {
        let l = r.as_label();
        let selected = if q.reason == l { " selected" } else { "" };
        let _ = write!(out, "<option{selected}>{l}</option>");
    }
    out.push_str(
        "</select></label><label>status<select name=\"status\"><option value=\"\">any</option>",
    );
    for s in ["healthy", "failing", "pending", "expiring", "critical"] {
        let selected = if q.status == s { " selected" } else { "" };
        let _ = write!(out, "<option{selected}>{s}</option>");
    }
    out.push_str("</select></label>");
    for (k, v) in [("sort", &q.sort), ("order", &q.order), ("limit", &q.limit)] {
        if !v.is_empty() {
            let _ = write!(
                out,
                "<input type=\"hidden\" name=\"{k}\" value=\"{}\">",
                Esc(v)
            );
        }
    }
    out.push_str("<button type=\"submit\">Filter</button> <a href=\"/\">clear</a></form>\n");
}

/// A column header: a link sorting by `key` (again: the other way round).
fn header(out: &mut String, q: &FleetQuery, key: &str, title: &str) {
    let current = q.sort == key;
    let desc = current && q.order != "desc";
    let arrow = match (current, q.order == "desc") {
        (false, _) => "",
        (true, false) => " ▲",
        (true, true) => " ▼",
    };
    let _ = write!(
        out,
        "<th><a href=\"/{}\">{}{arrow}</a></th>",
        query(
            q,
            &[("sort", key), ("order", if desc { "desc" } else { "" })]
        ),
        Esc(title)
    );
}

/// `?name=…&…` for the current query with some parameters replaced (an empty value drops it).
/// Percent-encoded, so it needs no HTML escaping.
fn query(q: &FleetQuery, replace: &[(&str, &str)]) -> String {
    let mut out = String::new();
    let current = [
        ("name", q.name.as_str()),
        ("label", &q.label),
        ("reason", &q.reason),
        ("status", &q.status),
        ("sort", &q.sort),
        ("order", &q.order),
        ("limit", &q.limit),
    ];
    for (k, v) in current {
        let v = replace
            .iter()
            .find(|(rk, _)| *rk == k)
            .map_or(v, |(_, rv)| *rv);
        if !v.is_empty() {
            out.push(if out.is_empty() { '?' } else { '&' });
            let _ = write!(out, "{k}={}", Url(v));
        }
    }
    out
}

/// The rows a query keeps.
struct Filter<'q> {
    name: Option<String>,
    label: Option<(&'q str, Option<&'q str>)>,
    reason: Option<&'q str>,
    status: Option<&'q str>,
}

impl<'q> Filter<'q> {
    fn parse(q: &'q FleetQuery) -> Filter<'q> {
        let set = |s: &'q str| Some(s.trim()).filter(|s| !s.is_empty());
        Filter {
            name: set(&q.name).map(str::to_lowercase),
            label: set(&q.label).map(|l| match l.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (l, None),
            }),
            reason: set(&q.reason),
            status: set(&q.status),
        }
    }

    fn keeps(&self, r: &Row<'_>) -> bool {
        let t = &r.en.target;
        if let Some(needle) = &self.name {
            if !t.name.to_lowercase().contains(needle.as_str())
                && !t.address.to_lowercase().contains(needle.as_str())
            {
                return false;
            }
        }
        if let Some((key, value)) = self.label {
            match (r.label(key), value) {
                (None, _) => return false,
                (Some(v), Some(want)) if v != want => return false,
                _ => {}
            }
        }
        if let Some(reason) = self.reason {
            if r.reason.map(FailureReason::as_label) != Some(reason) {
                return false;
            }
        }
        match self.status {
            None => true,
            Some("healthy") => r.health == Health::Ok,
            Some("failing") => r.health == Health::Failing,
            Some("pending") => r.health == Health::Pending,
            Some("expiring") => r.urgency >= Urgency::Warning,
            Some("critical") => r.urgency == Urgency::Critical,
            // An unknown status matches nothing rather than everything.
            Some(_) => false,
        }
    }
}

/// The row order a query asks for.
struct Sort<'q> {
    column: Column<'q>,
    desc: bool,
}

enum Column<'q> {
    /// Failing first, then soonest expiry, then name.
    Default,
    Name,
    Address,
    Label(&'q str),
    Result,
    Reason,
    Expiry,
    Certificate,
    Tls,
    Probe,
}

impl<'q> Sort<'q> {
    fn parse(q: &'q FleetQuery) -> Sort<'q> {
        let column = match q.sort.as_str() {
            "name" => Column::Name,
            "address" => Column::Address,
            "result" => Column::Result,
            "reason" => Column::Reason,
            "expiry" => Column::Expiry,
            "certificate" => Column::Certificate,
            "tls" => Column::Tls,
            "probe" => Column::Probe,
            s => s
                .strip_prefix("label.")
                .map_or(Column::Default, Column::Label),
        };
        Sort {
            column,
            desc: q.order == "desc",
        }
    }

    fn cmp(&self, a: &Row<'_>, b: &Row<'_>) -> Ordering {
        let by_column = match self.column {
            Column::Default => Ordering::Equal,
            Column::Name => a.en.target.name.cmp(&b.en.target.name),
            Column::Address => a.en.target.address.cmp(&b.en.target.address),
            // Rows without the label last either way round.
            Column::Label(k) => none_last(a.label(k), b.label(k), self.desc),
            Column::Result => a.health.cmp(&b.health),
            Column::Reason => none_last(
                a.reason.map(FailureReason::as_label),
                b.reason.map(FailureReason::as_label),
                self.desc,
            ),
            Column::Expiry => none_last(
                a.expiry.map(|e| e.not_after),
                b.expiry.map(|e| e.not_after),
                self.desc,
            ),
            Column::Certificate => a.subject().cmp(b.subject()),
            Column::Tls => a.version().cmp(b.version()),
            Column::Probe => a.finished().cmp(&b.finished()),
        };
        let by_column = if self.desc {
            by_column.reverse()
        } else {
            by_column
        };
        by_column.then_with(|| default_order(a, b))
    }
}

/// `a` before `b` by value, a missing value after every present one whichever the direction
/// (the caller reverses the result for `desc`).
fn none_last<T: Ord>(a: Option<T>, b: Option<T>, desc: bool) -> Ordering {
    let missing_last = if desc {
        Ordering::Less
    } else {
        Ordering::Greater
    };
    match (a, b) {
        (Some(a), Some(b)) => a.cmp(&b),
        (None, None) => Ordering::Equal,
        (None, Some(_)) => missing_last,
        (Some(_), None) => missing_last.reverse(),
    }
}

/// Failing rows first, then by soonest expiry (none last), then by name and address.
fn default_order(a: &Row<'_>, b: &Row<'_>) -> Ordering {
    let failing = |r: &Row<'_>| r.health != Health::Failing;
    failing(a)
        .cmp(&failing(b))
        .then_with(|| {
            none_last(
                a.expiry.map(|e| e.not_after),
                b.expiry.map(|e| e.not_after),
                false,
            )
        })
        .then_with(|| a.en.target.name.cmp(&b.en.target.name))
        .then_with(|| {
            a.probed
                .and_then(|p| p.ip)
                .cmp(&b.probed.and_then(|p| p.ip))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::State;
    use crate::status::fixtures::{self, DAY, NOW};

    const FLEET: &str = "targets:
  - {name: good, address: \"good.example:443\", labels: {team: core, region: eu}}
  - {name: soon, address: \"soon.example:443\", labels: {team: edge}}
  - {name: urgent, address: \"urgent.example:443\", labels: {team: core}}
  - {name: refused, address: \"refused.example:443\", labels: {team: edge}}
  - {name: expired, address: \"expired.example:443\"}
  - {name: new, address: \"new.example:443\"}
";

    /// good: 80 of 90 days left; soon: 20 of 90 left (warning); urgent: 1 day left (critical);
    /// refused and expired fail; new is not probed yet.
    fn fleet() -> State {
        let (state, t) = fixtures::state(FLEET);
        let record = |i: usize, o| fixtures::record(&state, &t[i], o);
        record(0, fixtures::healthy("good", NOW - 10 * DAY, NOW + 80 * DAY));
        record(1, fixtures::healthy("soon", NOW - 70 * DAY, NOW + 20 * DAY));
        record(2, fixtures::healthy("urgent", NOW - 89 * DAY, NOW + DAY));
        record(
            3,
            fixtures::failing(
                FailureReason::ConnectionRefused,
                "connect to 10.0.0.1:443 refused",
            ),
        );
        let mut expired = fixtures::healthy("expired", NOW - 91 * DAY, NOW - DAY);
        expired.failure = Some(crate::verdict::Failure::new(
            FailureReason::Expired,
            "certificate expired",
        ));
        record(4, expired);
        state
    }

    fn page(state: &State, q: &FleetQuery) -> String {
        render(&state.snapshot(), &state.files(), q, NOW)
    }

    /// The targets of the table's rows, in order.
    fn order(page: &str) -> Vec<&str> {
        page.split("<tr class=\"")
            .skip(1)
            .filter_map(|row| row.split("data-target=\"").nth(1)?.split('"').next())
            .collect()
    }

    /// The number shown by the summary item `id`.
    fn count(page: &str, id: &str) -> Option<usize> {
        let item = page.split(&format!("id=\"count-{id}\"")).nth(1)?;
        item.split("<b>").nth(1)?.split("</b>").next()?.parse().ok()
    }

    #[test]
    fn summary_counts_every_target_by_health_reason_and_expiry() {
        let p = page(&fleet(), &FleetQuery::default());
        assert_eq!(count(&p, "targets"), Some(6), "{p}");
        assert_eq!(count(&p, "healthy"), Some(3), "{p}");
        assert_eq!(count(&p, "failing"), Some(2), "{p}");
        assert_eq!(count(&p, "pending"), Some(1), "{p}");
        assert_eq!(count(&p, "reason-connection_refused"), Some(1), "{p}");
        assert_eq!(count(&p, "reason-expired"), Some(1), "{p}");
        // soon (warning), urgent and expired (critical).
        assert_eq!(count(&p, "expiring"), Some(3), "{p}");
        assert_eq!(count(&p, "critical"), Some(2), "{p}");
        assert_eq!(count(&p, "reason-other"), None, "{p}");
    }

    #[test]
    fn failing_rows_come_first_then_soonest_expiry() {
        let p = page(&fleet(), &FleetQuery::default());
        assert_eq!(
            order(&p),
            ["expired", "refused", "urgent", "soon", "good", "new"],
            "{p}"
        );
    }

    #[test]
    fn filters_by_name_label_reason_and_status() {
        let state = fleet();
        let q = |f: fn(&mut FleetQuery)| {
            let mut q = FleetQuery::default();
            f(&mut q);
            order(&page(&state, &q)).join(" ")
        };
        assert_eq!(q(|q| q.name = "SOON.example".into()), "soon");
        assert_eq!(q(|q| q.label = "team=core".into()), "urgent good");
        assert_eq!(q(|q| q.label = "region".into()), "good");
        assert_eq!(q(|q| q.reason = "expired".into()), "expired");
        assert_eq!(q(|q| q.status = "healthy".into()), "urgent soon good");
        assert_eq!(q(|q| q.status = "failing".into()), "expired refused");
        assert_eq!(q(|q| q.status = "pending".into()), "new");
        assert_eq!(q(|q| q.status = "expiring".into()), "expired urgent soon");
        assert_eq!(q(|q| q.status = "critical".into()), "expired urgent");
        assert_eq!(q(|q| q.status = "bogus".into()), "");
        let both = |q: &mut FleetQuery| {
            q.label = "team=edge".into();
            q.status = "failing".into();
        };
        assert_eq!(q(both), "refused");
    }

    #[test]
    fn a_filter_matching_nothing_says_so_and_keeps_the_counts() {
        let q = FleetQuery {
            name: "nothing-like-this".into(),
            ..FleetQuery::default()
        };
        let p = page(&fleet(), &q);
        assert!(order(&p).is_empty(), "{p}");
        assert!(p.contains("No target matches the filter."), "{p}");
        assert_eq!(count(&p, "targets"), Some(6), "{p}");
        assert!(p.contains("value=\"nothing-like-this\""), "{p}");
    }

    #[test]
    fn columns_sort_both_ways_with_missing_values_last() {
        let state = fleet();
        let sorted = |sort: &str, order_: &str| {
            let q = FleetQuery {
                sort: sort.into(),
                order: order_.into(),
                ..FleetQuery::default()
            };
            order(&page(&state, &q)).join(" ")
        };
        assert_eq!(sorted("name", ""), "expired good new refused soon urgent");
        assert_eq!(
            sorted("name", "desc"),
            "urgent soon refused new good expired"
        );
        assert_eq!(sorted("expiry", ""), "expired urgent soon good refused new");
        assert_eq!(
            sorted("expiry", "desc"),
            "good soon urgent expired refused new"
        );
        // Ties keep the default order (failing first); rows without the label go last.
        assert_eq!(
            sorted("label.team", ""),
            "urgent good refused soon expired new"
        );
        assert_eq!(
            sorted("label.team", "desc"),
            "refused soon urgent good expired new"
        );
        assert_eq!(sorted("reason", ""), "refused expired urgent soon good new");
        assert_eq!(sorted("result", ""), "expired refused new urgent soon good");
    }

    #[test]
    fn sort_links_keep_the_filter_and_toggle_the_direction() {
        let q = FleetQuery {
            label: "team=core".into(),
            sort: "name".into(),
            ..FleetQuery::default()
        };
        let p = page(&fleet(), &q);
        assert!(
            p.contains("<a href=\"/?label=team%3Dcore&sort=name&order=desc\">target ▲</a>"),
            "{p}"
        );
        assert!(
            p.contains("<a href=\"/?label=team%3Dcore&sort=expiry\">expires in</a>"),
            "{p}"
        );
        assert!(
            p.contains("<input type=\"hidden\" name=\"sort\" value=\"name\">"),
            "{p}"
        );
    }

    #[test]
    fn user_labels_are_columns() {
        let p = page(&fleet(), &FleetQuery::default());
        let head = p.split("</thead>").next().unwrap_or_default();
        let region = head.find(">region<");
        let team = head.find(">team<");
        assert!(
            region.is_some() && team.is_some() && region < team,
            "{head}"
        );
        assert!(
            p.contains("<td>good.example:443</td><td>eu</td><td>core</td>"),
            "{p}"
        );
    }

    #[test]
    fn expiry_cells_show_time_left_coloured_by_the_lifetime_rule() {
        let p = page(&fleet(), &FleetQuery::default());
        let cell = |target: &str| {
            let row = p
                .split(&format!("data-target=\"{target}\""))
                .nth(1)
                .and_then(|r| r.split("</tr>").next())
                .unwrap_or_default()
                .to_string();
            row.split("<time").nth(1).map(str::to_string).unwrap_or(row)
        };
        let good = cell("good");
        assert!(
            good.starts_with(" datetime=\"2024-02-02T22:13:20Z\""),
            "{good}"
        );
        assert!(good.contains(">80 days</time>"), "{good}");
        assert!(
            p.contains("<td><time datetime=\"2024-02-02T22:13:20Z\""),
            "{p}"
        );
        assert!(
            p.contains("<td class=\"warn\"><time datetime=\"2023-12-04T22:13:20Z\""),
            "{p}"
        );
        assert!(
            p.contains("<td class=\"crit\"><time datetime=\"2023-11-15T22:13:20Z\""),
            "{p}"
        );
        assert!(cell("expired").contains(">expired 1 day ago</time>"), "{p}");
    }

    #[test]
    fn strings_from_config_and_certificates_are_escaped() {
        let yaml = "targets:\n  - {name: \"<script>alert('n')</script>\", address: \"x.example:443\", labels: {team: \"<i>\\\"q\\\"\"}}\n";
        let (state, t) = fixtures::state(yaml);
        let mut o = fixtures::healthy("<script>alert(\"cn\")</script>", NOW - DAY, NOW + 60 * DAY);
        o.failure = Some(crate::verdict::Failure::new(
            FailureReason::Other,
            "detail <img src=x onerror=alert(1)> 'quoted'",
        ));
        fixtures::record(&state, &t[0], o);
        let q = FleetQuery {
            name: "\"><script>".into(),
            ..FleetQuery::default()
        };
        let mut p = page(&state, &FleetQuery::default());
        p.push_str(&page(&state, &q));
        for raw in [
            "<script>alert",
            "<i>",
            "<img",
            "\"q\"",
            "'quoted'",
            "\"><script>",
        ] {
            assert!(!p.contains(raw), "{raw} unescaped in:\n{p}");
        }
        assert!(
            p.contains("&lt;script&gt;alert(&#39;n&#39;)&lt;/script&gt;"),
            "{p}"
        );
        assert!(
            p.contains("/target/%3Cscript%3Ealert%28%27n%27%29%3C%2Fscript%3E"),
            "{p}"
        );
        assert!(
            p.contains("CN=&lt;script&gt;alert(&quot;cn&quot;)&lt;/script&gt;"),
            "{p}"
        );
        assert!(p.contains("&lt;i&gt;&quot;q&quot;"), "{p}");
        assert!(p.contains("value=\"&quot;&gt;&lt;script&gt;\""), "{p}");
    }

    #[test]
    fn row_limit_links_to_show_all() {
        let q = FleetQuery {
            limit: "2".into(),
            status: "healthy".into(),
            ..FleetQuery::default()
        };
        let p = page(&fleet(), &q);
        assert_eq!(order(&p), ["urgent", "soon"], "{p}");
        assert!(
            p.contains("Showing 2 of 3 rows (6 targets configured)."),
            "{p}"
        );
        assert!(
            p.contains(
                "<a id=\"show-all\" href=\"/?status=healthy&limit=all\">Show all 3 rows</a>"
            ),
            "{p}"
        );
        let all = FleetQuery {
            limit: "all".into(),
            ..q
        };
        let p = page(&fleet(), &all);
        assert_eq!(order(&p).len(), 3, "{p}");
        assert!(!p.contains("show-all"), "{p}");
    }

    #[test]
    fn default_page_stops_at_the_row_limit_and_links_to_the_rest() {
        let mut yaml = String::from("targets:\n");
        for i in 0..=DEFAULT_ROWS {
            yaml.push_str(&format!(
                "  - {{name: t{i:04}, address: \"t{i}.example:443\"}}\n"
            ));
        }
        let (state, _) = fixtures::state(&yaml);
        let p = page(&state, &FleetQuery::default());
        let shown = order(&p);
        assert_eq!(shown.len(), DEFAULT_ROWS);
        assert_eq!(shown.first(), Some(&"t0000"));
        assert!(
            p.contains("Showing 500 of 501 rows (501 targets configured)."),
            "{p}"
        );
        assert!(
            p.contains("<a id=\"show-all\" href=\"/?limit=all\">Show all 501 rows</a>"),
            "{p}"
        );
    }

    #[test]
    fn resolve_all_targets_have_a_row_per_address() {
        let (state, t) = fixtures::state(
            "targets:\n  - {name: multi, address: \"multi.example:443\", resolve: all}\n",
        );
        let ip = |last: u8| Some(std::net::IpAddr::from([192, 0, 2, last]));
        let good = crate::probe::outcome::AddressOutcome {
            ip: ip(1),
            outcome: std::sync::Arc::new(fixtures::healthy("a", NOW - DAY, NOW + 60 * DAY)),
        };
        let bad = crate::probe::outcome::AddressOutcome {
            ip: ip(2),
            outcome: std::sync::Arc::new(fixtures::failing(FailureReason::HostnameMismatch, "x")),
        };
        state.record(&t[0], crate::probe::Check::Probe, vec![good, bad]);
        let p = page(&state, &FleetQuery::default());
        assert_eq!(order(&p), ["multi", "multi"], "{p}");
        assert!(p.contains("multi.example:443 (192.0.2.2)</td>"), "{p}");
        assert!(p.contains("multi.example:443 (192.0.2.1)</td>"), "{p}");
        assert!(
            p.find("(192.0.2.2)") < p.find("(192.0.2.1)"),
            "failing first: {p}"
        );
        assert_eq!(count(&p, "failing"), Some(1), "{p}");
        assert_eq!(count(&p, "healthy"), Some(0), "{p}");
    }

    /// By hand: `cargo test --lib status::fleet::tests::render_time_at_ten_thousand_targets
    /// -- --ignored --nocapture`. Prints the render time and size of `/` for 10,000 targets
    /// (one in ten failing); asserts nothing about time.
    #[test]
    #[ignore]
    fn render_time_at_ten_thousand_targets() {
        let mut yaml = String::from("targets:\n");
        for i in 0..10_000 {
            yaml.push_str(&format!(
                "  - {{name: \"service-{i:05}.example.com\", address: \"service-{i:05}.example.com:443\", labels: {{team: team-{}, region: region-{}}}}}\n",
                i % 37,
                i % 5
            ));
        }
        let (state, t) = fixtures::state(&yaml);
        for (i, target) in t.iter().enumerate() {
            let o = if i % 10 == 0 {
                fixtures::failing(
                    FailureReason::ConnectTimeout,
                    "connect to 192.0.2.1:443 timed out after 10s",
                )
            } else {
                let left = i64::try_from(i % 90).unwrap_or(0) * DAY;
                fixtures::healthy(&target.name, NOW - 90 * DAY + left, NOW + left + 3600)
            };
            fixtures::record(&state, target, o);
        }
        for (name, q) in [
            ("default (500 rows)", FleetQuery::default()),
            (
                "limit=all",
                FleetQuery {
                    limit: "all".into(),
                    ..FleetQuery::default()
                },
            ),
            (
                "status=failing",
                FleetQuery {
                    status: "failing".into(),
                    ..FleetQuery::default()
                },
            ),
        ] {
            let mut times = Vec::new();
            let mut size = 0;
            for _ in 0..5 {
                let start = std::time::Instant::now();
                let p = crate::status::fleet_page(
                    &state,
                    &q,
                    std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000),
                );
                times.push(start.elapsed());
                size = p.len();
            }
            times.sort();
            println!(
                "10,000 targets, {name}: median {:?} (min {:?}, max {:?}) over 5 renders, {size} bytes",
                times[2], times[0], times[4]
            );
        }
    }
}
