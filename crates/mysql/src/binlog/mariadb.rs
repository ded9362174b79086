//! MariaDB-specific binlog events (types 160-171).
//!
//! With `@mariadb_slave_capability=4` the server sends its own events
//! instead of rewriting them as dummy QUERY events; mysql_common does not
//! know them, so their bytes are decoded here.

/// Event type codes.
pub const ANNOTATE_ROWS: u8 = 160;
pub const BINLOG_CHECKPOINT: u8 = 161;
pub const GTID: u8 = 162;
pub const GTID_LIST: u8 = 163;
pub const START_ENCRYPTION: u8 = 164;
pub const QUERY_COMPRESSED: u8 = 165;
/// 166..=171: WRITE/UPDATE/DELETE_ROWS_COMPRESSED (v1 and v2).
pub const ROWS_COMPRESSED_FIRST: u8 = 166;
pub const ROWS_COMPRESSED_LAST: u8 = 171;

/// The GTID event's flag for a statement that is its own transaction (DDL):
/// no XID or COMMIT follows.
const FL_STANDALONE: u8 = 1;

/// A MariaDB GTID event: `domain-server-seq` and whether it stands alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gtid {
    pub domain: u32,
    pub server_id: u32,
    pub seq: u64,
    pub standalone: bool,
}

impl Gtid {
    /// Body layout: seq_no (8 bytes LE), domain_id (4 bytes LE), flags (1 byte), ...
    pub fn decode(server_id: u32, body: &[u8]) -> Option<Gtid> {
        if body.len() < 13 {
            return None;
        }
        let seq = u64::from_le_bytes(body[0..8].try_into().ok()?);
        let domain = u32::from_le_bytes(body[8..12].try_into().ok()?);
        Some(Gtid {
            domain,
            server_id,
            seq,
            standalone: body[12] & FL_STANDALONE != 0,
        })
    }
}

impl std::fmt::Display for Gtid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}-{}", self.domain, self.server_id, self.seq)
    }
}

/// A MariaDB GTID position: the last GTID seen per replication domain, as
/// `@@gtid_binlog_pos` prints it (`0-1-100,1-2-7`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GtidPos(Vec<Gtid>);

impl GtidPos {
    pub fn parse(s: &str) -> GtidPos {
        let mut v = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let f: Vec<&str> = part.split('-').collect();
            if let [d, s, n] = f[..] {
                if let (Ok(domain), Ok(server_id), Ok(seq)) = (d.parse(), s.parse(), n.parse()) {
                    v.push(Gtid {
                        domain,
                        server_id,
                        seq,
                        standalone: false,
                    });
                }
            }
        }
        GtidPos(v)
    }

    pub fn update(&mut self, g: &Gtid) {
        match self.0.iter_mut().find(|x| x.domain == g.domain) {
            Some(x) => {
                x.server_id = g.server_id;
                x.seq = g.seq;
            }
            None => {
                self.0.push(g.clone());
                self.0.sort_by_key(|x| x.domain);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Writes the position as `Display` does, into `out` (cleared first):
    /// every transaction's position carries it, and `format!` of the parts
    /// cost more than decoding the transaction's rows.
    pub fn write_to(&self, out: &mut String) {
        out.clear();
        let mut num = itoa::Buffer::new();
        for (i, g) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(num.format(g.domain));
            out.push('-');
            out.push_str(num.format(g.server_id));
            out.push('-');
            out.push_str(num.format(g.seq));
        }
    }
}

impl std::fmt::Display for GtidPos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = String::new();
        self.write_to(&mut s);
        f.write_str(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_gtid_and_tracks_position() {
        let mut body = Vec::new();
        body.extend_from_slice(&105u64.to_le_bytes());
        body.extend_from_slice(&2u32.to_le_bytes());
        body.push(1);
        body.extend_from_slice(&[0; 6]);
        let g = Gtid::decode(7, &body).unwrap();
        assert_eq!(g.to_string(), "2-7-105");
        assert!(g.standalone);
        let mut pos = GtidPos::parse("0-1-10");
        pos.update(&g);
        assert_eq!(pos.to_string(), "0-1-10,2-7-105");
        pos.update(&Gtid {
            domain: 0,
            server_id: 3,
            seq: 11,
            standalone: false,
        });
        assert_eq!(pos.to_string(), "0-3-11,2-7-105");
    }
}
