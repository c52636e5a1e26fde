//! HTML text for the status pages: escaping, URL components, and the frame every page shares
//! (head, style sheet, header, the refresh and debug scripts).
//!
//! Every string that comes from a certificate, a server or the config goes through `Esc` (or
//! `Url` inside a link); the page modules never write such a string raw. What goes on a page is
//! theirs.

use std::fmt::{self, Write};

/// HTML-escapes its text on display: `&`, `<`, `>`, `"` and `'`, so it is safe both between
/// tags and inside a quoted attribute.
pub(crate) struct Esc<'a>(pub(crate) &'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(i) = rest.find(['&', '<', '>', '"', '\'']) {
            let (plain, tail) = rest.split_at(i);
            f.write_str(plain)?;
            let mut chars = tail.chars();
            f.write_str(match chars.next() {
                Some('&') => "&amp;",
                Some('<') => "&lt;",
                Some('>') => "&gt;",
                Some('"') => "&quot;",
                _ => "&#39;",
            })?;
            rest = chars.as_str();
        }
        f.write_str(rest)
    }
}

/// Percent-encodes its text on display as one URL path segment or query value: every byte but
/// the unreserved ones (RFC 3986 §2.3). The result needs no HTML escaping.
pub(crate) struct Url<'a>(pub(crate) &'a str);

impl fmt::Display for Url<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                f.write_char(char::from(b))?;
            } else {
                write!(f, "%{b:02X}")?;
            }
        }
        Ok(())
    }
}

/// What a page's frame adds at the end.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scripts {
    /// Reload the `#live` element every so many seconds (0: never).
    pub(crate) refresh_secs: u32,
    /// Write the document's scroll and client widths into `#debug-width` (`?debug`), so a
    /// headless browser's DOM dump shows whether the page overflows horizontally.
    pub(crate) debug: bool,
}

/// Opens a page: doctype, head (title, style, a refresh for browsers without scripts) and the
/// header bar.
pub(crate) fn open(out: &mut String, title: &str, scripts: Scripts) {
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · tls_exporter</title>",
        Esc(title)
    );
    if scripts.refresh_secs > 0 {
        let _ = write!(
            out,
            "<noscript><meta http-equiv=\"refresh\" content=\"{}\"></noscript>",
            scripts.refresh_secs
        );
    }
    let _ = write!(
        out,
        "<style>{STYLE}</style></head>\n<body><header><h1><a href=\"/\">tls_exporter</a></h1>\
         <span class=\"version\">{}</span><nav><a href=\"/\">all targets</a> \
         <a href=\"/metrics\">metrics</a></nav></header>\n<main>",
        Esc(&crate::metrics::version_string())
    );
}

/// Closes a page opened by `open`, with its scripts.
pub(crate) fn close(out: &mut String, scripts: Scripts) {
    out.push_str("</main>\n");
    if scripts.refresh_secs > 0 {
        let script = REFRESH.replace("SECS", &scripts.refresh_secs.to_string());
        let _ = writeln!(out, "<script>{script}</script>");
    }
    if scripts.debug {
        let _ = writeln!(out, "<script>{DEBUG}</script>");
    }
    out.push_str("</body></html>\n");
}

/// Replaces `#live` with the same element of a fresh copy of the page (the same URL, so the
/// same filter and sort) while the tab is visible; the filter form outside it is left alone.
const REFRESH: &str = "(function(){var ms=SECS*1000;function tick(){\
if(document.hidden){setTimeout(tick,ms);return;}\
fetch(location.href,{cache:'no-store'}).then(function(r){return r.ok?r.text():null;})\
.then(function(t){if(!t)return;var n=new DOMParser().parseFromString(t,'text/html').getElementById('live');\
var o=document.getElementById('live');if(n&&o)o.replaceWith(n);})\
.catch(function(){}).then(function(){setTimeout(tick,ms);});}setTimeout(tick,ms);})();";

const DEBUG: &str =
    "(function(){var d=document.documentElement,o=document.createElement('output');\
o.id='debug-width';o.dataset.scrollWidth=d.scrollWidth;o.dataset.clientWidth=d.clientWidth;\
o.textContent='scrollWidth '+d.scrollWidth+', clientWidth '+d.clientWidth;\
document.body.appendChild(o);})();";

/// One style sheet for both pages. Cells wrap anywhere and the fleet table's layout is fixed
/// (its column widths are `fleet`'s), so pages fit the window (from 1,000 px) whatever the
/// names, subjects and label columns.
const STYLE: &str = "*{box-sizing:border-box}\
body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#1d2430;background:#f4f5f7}\
header{background:#1d2430;color:#e8ecf2;padding:8px 16px;display:flex;flex-wrap:wrap;gap:6px 16px;align-items:baseline}\
header h1{font-size:18px;margin:0}header a{color:#fff;text-decoration:none}\
header .version{font-size:12px;color:#aab3c0;flex:1}header nav a{margin-left:12px;color:#cfe0ff}\
main{padding:12px 16px}h1.title{font-size:20px;margin:0 0 10px;overflow-wrap:anywhere}h2{font-size:16px;margin:0 0 8px}h3{font-size:14px;margin:10px 0 6px}\
a{color:#1f5fbf}.muted{color:#667085}.mono{font-family:ui-monospace,'DejaVu Sans Mono',monospace;font-size:12px}\
.summary{display:flex;flex-wrap:wrap;gap:8px;margin:0 0 10px;padding:0;list-style:none}\
.summary a{display:block;min-width:84px;font-weight:400;padding:5px 10px;border-radius:6px;background:#fff;border:1px solid #d5dae1;text-decoration:none;color:inherit}\
.summary a.on{border-color:#1f5fbf;box-shadow:0 0 0 1px #1f5fbf}\
.summary b{display:block;font-size:18px}.summary .failing b{color:#b3261e}.summary .healthy b{color:#1e7b34}\
.summary .warn b{color:#8a5a00}.summary .crit b{color:#b3261e}\
form.filter{display:flex;flex-wrap:wrap;gap:8px;align-items:flex-end;margin:0 0 10px}\
form.filter label{display:flex;flex-direction:column;font-size:12px;color:#555}\
input,select,button{font:inherit;padding:3px 6px}\
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #d5dae1}#live>table{table-layout:fixed}\
th,td{border-bottom:1px solid #e4e7eb;padding:4px 6px;text-align:left;vertical-align:top;overflow-wrap:anywhere}\
th{background:#eaedf1;font-weight:600;font-size:13px}td.nowrap{white-space:nowrap}th a{color:inherit;text-decoration:none}\
tbody tr:hover{background:#f7f9fc}\
td.result{font-weight:600}tr.failing td.result{color:#b3261e}tr.ok td.result{color:#1e7b34}tr.pending td.result{color:#667085}\
.warn{background:#fff1cc;color:#6b4500}.crit{background:#fbd9d6;color:#8c1d18;font-weight:600}\
td.warn,td.crit,dd.warn,dd.crit{border-radius:3px}\
.detail{color:#555;font-size:12px;display:-webkit-box;-webkit-line-clamp:2;-webkit-box-orient:vertical;overflow:hidden}\
section{background:#fff;border:1px solid #d5dae1;border-radius:6px;padding:10px 12px;margin:0 0 12px}\
dl.facts{display:grid;grid-template-columns:minmax(120px,max-content) minmax(0,1fr);gap:2px 14px;margin:0}\
dl.facts dt{color:#555}dl.facts dd{margin:0;overflow-wrap:anywhere}\
.certs{display:grid;grid-template-columns:repeat(auto-fill,minmax(440px,1fr));gap:10px}\
.cert{border:1px solid #e4e7eb;border-radius:6px;padding:8px}\
span.ok{color:#1e7b34;font-weight:600}b.failing{color:#b3261e}p.note{margin:6px 0;color:#555}output#debug-width{display:block;color:#999;font-size:11px;padding:4px 16px}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            Esc("<a href=\"x\">&'").to_string(),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(Esc("plain, é").to_string(), "plain, é");
    }

    #[test]
    fn url_components_encode_everything_but_unreserved_bytes() {
        assert_eq!(
            Url("a b/<c>?&=\"é~_.-").to_string(),
            "a%20b%2F%3Cc%3E%3F%26%3D%22%C3%A9~_.-"
        );
    }

    #[test]
    fn frame_escapes_the_title_and_adds_the_scripts_asked_for() {
        let mut page = String::new();
        let scripts = Scripts {
            refresh_secs: 30,
            debug: false,
        };
        open(&mut page, "<x>", scripts);
        close(&mut page, scripts);
        assert!(
            page.contains("<title>&lt;x&gt; · tls_exporter</title>"),
            "{page}"
        );
        assert!(page.contains("content=\"30\""), "{page}");
        assert!(page.contains("var ms=30*1000"), "{page}");
        assert!(!page.contains("o.id='debug-width'"), "{page}");
    }
}
