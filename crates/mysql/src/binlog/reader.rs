//! Reading a server's binlog as a replica would, one event at a time.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use mysql_async::binlog::events::{EventData, RowsEventData, TableMapEvent};
use mysql_async::binlog::RowsEventFlags;
use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStream, BinlogStreamRequest};

use super::mariadb::{self, Gtid, GtidPos};
use super::schema::{self, Collations, MappedTable};
use crate::connect::Endpoint;
use crate::event::{Op, Position, TableId};
use crate::{Error, Result};

/// Where to start reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartAt {
    /// A binlog file and the offset of the first event to read.
    File { file: String, offset: u64 },
    /// A MariaDB GTID position (`@@gtid_binlog_pos` form): the server finds the file.
    MariaDbGtid(String),
}

pub use super::rows::RawRows;

/// What the reader hands on.
#[derive(Debug)]
pub enum BinlogEvent {
    /// A transaction starts (MariaDB GTID event, or MySQL `BEGIN`).
    Begin { gtid: Option<Gtid> },
    /// A statement that is its own transaction follows (MariaDB DDL GTID).
    Standalone { gtid: Gtid },
    /// Rows of one table changed.
    Rows {
        table: Arc<TableId>,
        op: Op,
        /// Decoded by the source once it knows the table's definition.
        rows: RawRows,
        /// The table as its TABLE_MAP describes it (needs
        /// binlog_row_metadata=FULL); the same `Arc` while the map is the same.
        mapped: Option<Arc<MappedTable>>,
        /// Whether the source session checked foreign keys for these rows
        /// (`foreign_key_checks`): a replica applies them the same way.
        foreign_key_checks: bool,
    },
    /// The transaction committed (XID, or `COMMIT`).
    Commit,
    /// A statement (DDL, or anything not DML).
    Query { schema: String, sql: String },
    /// The server is alive and has nothing newer to send.
    Heartbeat,
}

/// A binlog stream plus where it is.
pub struct BinlogReader {
    stream: BinlogStream,
    file: Arc<str>,
    /// End offset of the last event read: reading again from here skips nothing.
    offset: u64,
    gtid_pos: GtidPos,
    /// `gtid_pos` as text (every position handed on carries it).
    gtid_text: Option<Arc<str>>,
    /// Where the text is written before it is shared.
    gtid_buf: String,
    /// Seconds since the epoch of the last event (its commit time for XID).
    pub last_timestamp: u32,
    role: String,
    collations: Collations,
    /// Events before the first FORMAT_DESCRIPTION carry their CRC32 in the
    /// body (the library learns the checksum from that event).
    crc_in_body: bool,
    /// Each table id's last TABLE_MAP and what it describes: every
    /// transaction repeats the map, and decoding it for every rows event
    /// cost more than the rows.
    maps: foldhash::HashMap<u64, KnownMap>,
}

/// A table map seen before: its event, what it describes, and its table's
/// name (a rows event of it names the table without allocating).
struct KnownMap {
    event: TableMapEvent<'static>,
    /// How each column of its rows is decoded.
    columns: Arc<[super::rows::ColumnSpec]>,
    mapped: Option<Arc<MappedTable>>,
    table: Arc<TableId>,
}

/// `pos` as text, written into `buf` first: formatted without `format!`,
/// as every transaction changes it.
fn gtid_text(pos: &GtidPos, buf: &mut String) -> Option<Arc<str>> {
    pos.write_to(buf);
    (!pos.is_empty()).then(|| buf.as_str().into())
}

/// Table maps remembered at most; ids are new after each schema change.
const MAPS_KEPT: usize = 4096;

impl BinlogReader {
    /// Registers as a replica with `server_id` and asks for the binlog from `start`.
    pub async fn open(
        ep: &Endpoint,
        server_id: u32,
        start: &StartAt,
        gtid_pos: &str,
        heartbeat: Duration,
        collations: Collations,
    ) -> Result<BinlogReader> {
        let mut conn = ep.connect(&[]).await?;
        let mut setup = vec![
            // Receive MariaDB's own events (GTID, annotations) as they are.
            "SET @mariadb_slave_capability = 4".to_string(),
            format!(
                "SET @master_heartbeat_period = {}",
                heartbeat.as_nanos().max(1_000_000)
            ),
        ];
        let (file, offset) = match start {
            StartAt::File { file, offset } => (file.clone(), *offset),
            StartAt::MariaDbGtid(g) => {
                setup.push(format!(
                    "SET @slave_connect_state = '{}'",
                    g.replace('\'', "")
                ));
                setup.push("SET @slave_gtid_strict_mode = 0".into());
                setup.push("SET @slave_gtid_ignore_duplicates = 0".into());
                (String::new(), 4)
            }
        };
        ep.exec_all(&mut conn, &setup).await?;
        let checksum: Option<String> = conn
            .query_first("SELECT @@GLOBAL.binlog_checksum")
            .await
            .map_err(|e| ep.error("reading binlog_checksum", e))?;
        let crc_in_body = checksum.is_some_and(|c| !c.eq_ignore_ascii_case("NONE"));
        let req = BinlogStreamRequest::new(server_id)
            .with_filename(file.as_bytes())
            .with_pos(offset);
        let stream = conn
            .get_binlog_stream(req)
            .await
            .map_err(|e| ep.error(format!("requesting the binlog from {file}:{offset}"), e))?;
        let gtid_pos = GtidPos::parse(gtid_pos);
        let mut gtid_buf = String::new();
        Ok(BinlogReader {
            stream,
            file: file.into(),
            offset,
            gtid_text: gtid_text(&gtid_pos, &mut gtid_buf),
            gtid_buf,
            gtid_pos,
            last_timestamp: 0,
            role: ep.role.clone(),
            collations,
            crc_in_body,
            maps: Default::default(),
        })
    }

    /// The position just after the last event read.
    pub fn position(&self) -> Position {
        Position {
            file: self.file.clone(),
            offset: self.offset,
            gtid: self.gtid_text.clone(),
        }
    }

    /// The next event worth handing on; `None` when the server closed the stream.
    pub async fn next(&mut self) -> Result<Option<BinlogEvent>> {
        loop {
            let Some(ev) = self.stream.next().await else {
                return Ok(None);
            };
            let ev = ev.map_err(|e| self.stream_error(e))?;
            let header = ev.header();
            let raw_type = header.event_type_raw();
            if header.timestamp() != 0 {
                self.last_timestamp = header.timestamp();
            }
            // Fake events (rotate and format description at the start) have log_pos 0.
            let log_pos = header.log_pos() as u64;

            let data = ev.read_data().map_err(|e| {
                Error::Data(format!(
                    "{}: cannot decode binlog event at {}:{}: {e}",
                    self.role, self.file, log_pos
                ))
            })?;
            let out = match data {
                Some(EventData::RotateEvent(r)) => {
                    let raw = r.name_raw();
                    let name = if self.crc_in_body && raw.len() > 4 {
                        &raw[..raw.len() - 4]
                    } else {
                        raw
                    };
                    self.file = String::from_utf8_lossy(name).into();
                    self.offset = r.position();
                    continue;
                }
                Some(EventData::FormatDescriptionEvent(_)) => {
                    self.crc_in_body = false;
                    None
                }
                Some(EventData::HeartbeatEvent) => Some(BinlogEvent::Heartbeat),
                Some(EventData::XidEvent(_)) => Some(BinlogEvent::Commit),
                Some(EventData::QueryEvent(q)) => {
                    let sql = q.query().trim().to_string();
                    if sql.eq_ignore_ascii_case("BEGIN") {
                        Some(BinlogEvent::Begin { gtid: None })
                    } else if sql.eq_ignore_ascii_case("COMMIT") {
                        Some(BinlogEvent::Commit)
                    } else {
                        Some(BinlogEvent::Query {
                            schema: q.schema().to_string(),
                            sql,
                        })
                    }
                }
                Some(EventData::RowsEvent(re)) => Some(self.rows(&re, log_pos)?),
                Some(EventData::TableMapEvent(_)) => None,
                Some(EventData::GtidEvent(g)) => {
                    // MySQL GTID; the BEGIN query follows.
                    let _ = g;
                    None
                }
                Some(_) => None,
                None => self.mariadb_event(raw_type, header.server_id(), ev.data(), log_pos)?,
            };
            if log_pos != 0 {
                self.offset = log_pos;
            }
            if let Some(out) = out {
                return Ok(Some(out));
            }
        }
    }

    fn mariadb_event(
        &mut self,
        raw_type: u8,
        server_id: u32,
        body: &[u8],
        log_pos: u64,
    ) -> Result<Option<BinlogEvent>> {
        // Only for messages: a GTID event starts every transaction.
        let at = || format!("{}:{}", self.file, log_pos);
        match raw_type {
            mariadb::GTID => {
                let g = Gtid::decode(server_id, body).ok_or_else(|| {
                    Error::Data(format!("{}: malformed MariaDB GTID event at {}", self.role, at()))
                })?;
                self.gtid_pos.update(&g);
                self.gtid_text = gtid_text(&self.gtid_pos, &mut self.gtid_buf);
                Ok(Some(if g.standalone {
                    BinlogEvent::Standalone { gtid: g }
                } else {
                    BinlogEvent::Begin { gtid: Some(g) }
                }))
            }
            // Informational: the statement behind the next rows, checkpoints of
            // the binlog index, and the GTID state at the start of a file.
            mariadb::ANNOTATE_ROWS | mariadb::BINLOG_CHECKPOINT | mariadb::GTID_LIST => Ok(None),
            mariadb::START_ENCRYPTION => Err(Error::precondition(
                format!("{}: the binlog is encrypted (event at {})", self.role, at()),
                "sluice reads unencrypted binlogs only: set encrypt_binlog=OFF on the source",
            )),
            mariadb::QUERY_COMPRESSED | mariadb::ROWS_COMPRESSED_FIRST..=mariadb::ROWS_COMPRESSED_LAST => {
                Err(Error::precondition(
                    format!("{}: compressed binlog event (type {raw_type}) at {}", self.role, at()),
                    "set log_bin_compress=OFF on the source; events written while it was ON cannot be read yet, so restart the pipeline from a snapshot",
                ))
            }
            other => Err(Error::Data(format!(
                "{}: unknown binlog event type {other} at {}; please report it",
                self.role,
                at()
            ))),
        }
    }

    fn rows(&mut self, re: &RowsEventData<'_>, log_pos: u64) -> Result<BinlogEvent> {
        let (role, file) = (&self.role, &self.file);
        let at = || format!("{file}:{log_pos}");
        let tme = self.stream.get_tme(re.table_id()).ok_or_else(|| {
            Error::Data(format!(
                "{role}: rows event without its TABLE_MAP at {}",
                at()
            ))
        })?;
        let op = match re {
            RowsEventData::WriteRowsEventV1(_) | RowsEventData::WriteRowsEvent(_) => Op::Insert,
            RowsEventData::UpdateRowsEventV1(_) | RowsEventData::UpdateRowsEvent(_) => Op::Update,
            RowsEventData::DeleteRowsEventV1(_) | RowsEventData::DeleteRowsEvent(_) => Op::Delete,
            RowsEventData::PartialUpdateRowsEvent(_) => {
                return Err(Error::precondition(
                    format!("{role}: partial JSON update event at {}", at()),
                    "set binlog_row_value_options='' on the source (full JSON images)",
                ))
            }
        };
        let all_before = re.columns_before_image().is_none_or(|b| b.all());
        let all_after = re.columns_after_image().is_none_or(|b| b.all());
        if !all_before || !all_after {
            return Err(Error::precondition(
                format!(
                    "{role}: a row event at {} does not carry every column",
                    at()
                ),
                "set binlog_row_image=FULL on the source",
            ));
        }
        let known = match self.maps.get(&re.table_id()) {
            Some(k) if k.event == *tme => k,
            _ => {
                let columns = super::rows::column_specs(tme).map_err(|e| {
                    Error::Data(format!(
                        "{role}: cannot read the TABLE_MAP at {}: {e}",
                        at()
                    ))
                })?;
                let known = KnownMap {
                    event: tme.clone(),
                    columns,
                    mapped: schema::from_table_map(tme, &self.collations).map(Arc::new),
                    table: Arc::new(TableId::new(tme.database_name(), tme.table_name())),
                };
                if self.maps.len() >= MAPS_KEPT {
                    self.maps.clear();
                }
                self.maps
                    .entry(re.table_id())
                    .insert_entry(known)
                    .into_mut()
            }
        };
        let (mapped, table) = (known.mapped.clone(), known.table.clone());
        if re.num_columns() as usize != known.columns.len() {
            return Err(Error::Data(format!(
                "{role}: a rows event at {} has {} columns, its TABLE_MAP {}",
                at(),
                re.num_columns(),
                known.columns.len()
            )));
        }
        // Every column is in each image (checked above).
        let rows = RawRows::new(
            re.rows_data().to_vec(),
            known.columns.clone(),
            re.columns_before_image().is_some(),
            re.columns_after_image().is_some(),
        );
        let foreign_key_checks = !re.flags().contains(RowsEventFlags::NO_FOREIGN_KEY_CHECKS);
        Ok(BinlogEvent::Rows {
            table,
            op,
            rows,
            mapped,
            foreign_key_checks,
        })
    }

    fn stream_error(&self, e: mysql_async::Error) -> Error {
        if let mysql_async::Error::Server(s) = &e {
            if s.code == 1236 {
                return Error::precondition(
                    format!(
                        "{}: the source cannot send its binlog from {}:{}: {}",
                        self.role, self.file, self.offset, s.message
                    ),
                    "the binlog needed to resume was purged from the source: raise expire_logs_days/binlog_expire_logs_seconds, and restart from a new snapshot (drop the sink's row in sluice.checkpoints)",
                );
            }
        }
        Error::Server {
            role: self.role.clone(),
            url: String::new(),
            context: format!("reading the binlog at {}:{}", self.file, self.offset),
            detail: e.to_string(),
            hint: Some("sluice reconnects by itself; if this persists, check the source".into()),
        }
    }

    pub async fn close(self) {
        let _ = self.stream.close().await;
    }
}
