use futures::StreamExt;
use mysql_async::binlog::events::EventData;
use mysql_async::prelude::*;
use mysql_async::{BinlogStreamRequest, Conn, Opts};

#[tokio::main]
async fn main() {
    let url = std::env::args().nth(1).unwrap();
    let file = std::env::args().nth(2).unwrap();
    let pos: u64 = std::env::args().nth(3).unwrap().parse().unwrap();
    let mut conn = Conn::new(Opts::from_url(&url).unwrap()).await.unwrap();
    conn.query_drop("SET @mariadb_slave_capability=4")
        .await
        .unwrap();
    let req = BinlogStreamRequest::new(99)
        .with_filename(file.as_bytes())
        .with_pos(pos)
        .with_non_blocking();
    let mut s = conn.get_binlog_stream(req).await.unwrap();
    while let Some(ev) = s.next().await {
        let ev = ev.unwrap();
        let h = ev.header();
        let data = ev.read_data().unwrap();
        match data {
            Some(EventData::RowsEvent(re)) => {
                let tme = s.get_tme(re.table_id()).unwrap();
                for r in re.rows(tme) {
                    let (b, a) = r.unwrap();
                    println!(
                        "ROWS before={:?}\n after={:?}",
                        b.map(|r| r.unwrap()),
                        a.map(|r| r.unwrap())
                    );
                }
            }
            Some(other) => println!(
                "{:?} pos={} {:?}",
                h.event_type(),
                h.log_pos(),
                format!("{:?}", other).chars().take(200).collect::<String>()
            ),
            None => println!(
                "UNKNOWN type={:?} pos={} len={}",
                h.event_type_raw(),
                h.log_pos(),
                ev.data().len()
            ),
        }
    }
}
