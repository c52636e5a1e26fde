//! The `starttls:` value of a target: which protocol's STARTTLS upgrade to speak.
//!
//! This file owns the protocol names and their config spelling; `config` validates the value
//! (with the list of names on a mistake), and `probe::starttls` speaks the dialogue.

use std::fmt;

/// The protocols whose STARTTLS upgrade we speak; the `starttls:` value of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartTls {
    /// SMTP, RFC 3207.
    Smtp,
    /// IMAP, RFC 3501 / 9051.
    Imap,
    /// POP3, RFC 2595.
    Pop3,
    /// FTP, RFC 4217.
    Ftp,
    /// PostgreSQL SSLRequest.
    Postgres,
    /// LDAP StartTLS extended operation, RFC 4511 / 4513.
    Ldap,
    /// XMPP client-to-server, RFC 6120.
    Xmpp,
    /// MySQL / MariaDB SSLRequest.
    Mysql,
    /// NNTP, RFC 4642.
    Nntp,
    /// ManageSieve, RFC 5804.
    Sieve,
}

impl StartTls {
    /// Every protocol, in declaration order.
    pub const ALL: [StartTls; 10] = [
        StartTls::Smtp,
        StartTls::Imap,
        StartTls::Pop3,
        StartTls::Ftp,
        StartTls::Postgres,
        StartTls::Ldap,
        StartTls::Xmpp,
        StartTls::Mysql,
        StartTls::Nntp,
        StartTls::Sieve,
    ];

    /// The config spelling (`smtp`, `imap`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            StartTls::Smtp => "smtp",
            StartTls::Imap => "imap",
            StartTls::Pop3 => "pop3",
            StartTls::Ftp => "ftp",
            StartTls::Postgres => "postgres",
            StartTls::Ldap => "ldap",
            StartTls::Xmpp => "xmpp",
            StartTls::Mysql => "mysql",
            StartTls::Nntp => "nntp",
            StartTls::Sieve => "sieve",
        }
    }
}

impl fmt::Display for StartTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_spelling_round_trips() {
        for p in StartTls::ALL {
            let parsed: StartTls =
                serde_json_free_parse(p.as_str()).expect("every protocol parses");
            assert_eq!(parsed, p);
        }
    }

    /// Deserializes a unit variant from its name without a format crate.
    fn serde_json_free_parse(s: &str) -> Result<StartTls, serde::de::value::Error> {
        use serde::de::IntoDeserializer;
        serde::Deserialize::deserialize(s.into_deserializer())
    }
}
