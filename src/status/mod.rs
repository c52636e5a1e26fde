//! The status pages: `/`, the fleet at a glance (summary counts, failing targets first, filter
//! and sort by query parameters), and `/target/NAME`, everything known about one target.
//!
//! Both read the facts a state snapshot holds (outcomes, chains, scans, history), never metric
//! label text, and escape every string that comes from a certificate, a server or the config.
//! `fleet` and `target` build the pages, `html` escapes and frames them, `dates` writes times,
//! `expiry` decides how urgent an expiry is, `cert_files` lists the watched certificate files. The routes are `server`'s.

mod cert_files;
mod dates;
mod expiry;
mod fleet;
mod html;
mod target;

#[cfg(test)]
mod fixtures;

use std::time::SystemTime;

pub(crate) use fleet::FleetQuery;

use crate::state::State;

/// The fleet page at `now`.
pub(crate) fn fleet_page(state: &State, q: &FleetQuery, now: SystemTime) -> String {
    fleet::render(&state.snapshot(), &state.files(), q, dates::unix(now))
}

/// The page of the target named `name` at `now`, or `Err` with a page saying there is none.
pub(crate) fn target_page(
    state: &State,
    name: &str,
    now: SystemTime,
    debug: bool,
) -> Result<String, String> {
    match state.get(name) {
        Some(en) => Ok(target::render(&en, dates::unix(now), debug)),
        None => Err(target::not_found(name)),
    }
}
