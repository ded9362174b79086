//! Calendar arithmetic for DATE, DATETIME, TIMESTAMP and TIME.
//!
//! MySQL stores dates Arrow cannot: the zero date `0000-00-00`, dates with a
//! zero month or day (`2024-00-15`), and, under `ALLOW_INVALID_DATES`, days
//! past the month's end. To carry them without loss we give them values
//! below 0000-01-01, the smallest date MySQL can hold otherwise:
//! `code = year*416 + month*32 + day`, stored as `DAY0 - 1 - code` (DATE, in
//! days) or `DAY0_US - 1 - (code*DAY_US + time_of_day_us)` (DATETIME and
//! TIMESTAMP, in microseconds). Real dates never fall in that range, so the
//! encoding is unambiguous and reversible. docs/pipeline-yaml.md documents it
//! for readers of the data.

/// Days from 1970-01-01 to 0000-01-01.
pub const DAY0: i32 = -719_528;
pub const DAY_US: i64 = 86_400_000_000;
pub const DAY0_US: i64 = DAY0 as i64 * DAY_US;

/// A calendar date and time of day, as MySQL prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTimeParts {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub micro: u32,
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u8) -> u8 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u8, d: u8) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

fn is_real_date(y: u16, m: u8, d: u8) -> bool {
    (1..=12).contains(&m) && d >= 1 && d <= days_in_month(y as i64, m)
}

fn code(y: u16, m: u8, d: u8) -> i64 {
    y as i64 * 416 + m as i64 * 32 + d as i64
}

fn uncode(c: i64) -> (u16, u8, u8) {
    ((c / 416) as u16, ((c % 416) / 32) as u8, (c % 32) as u8)
}

/// DATE to Arrow Date32.
pub fn date_to_days(y: u16, m: u8, d: u8) -> i32 {
    if is_real_date(y, m, d) {
        days_from_civil(y as i64, m, d) as i32
    } else {
        (DAY0 as i64 - 1 - code(y, m, d)) as i32
    }
}

/// Arrow Date32 to `(year, month, day)`.
pub fn days_to_date(days: i32) -> (u16, u8, u8) {
    if days >= DAY0 {
        let (y, m, d) = civil_from_days(days as i64);
        (y as u16, m, d)
    } else {
        uncode(DAY0 as i64 - 1 - days as i64)
    }
}

/// DATETIME / TIMESTAMP to microseconds since the epoch.
pub fn datetime_to_us(p: DateTimeParts) -> i64 {
    let tod = ((p.hour as i64 * 60 + p.minute as i64) * 60 + p.second as i64) * 1_000_000
        + p.micro as i64;
    if is_real_date(p.year, p.month, p.day) {
        days_from_civil(p.year as i64, p.month, p.day) * DAY_US + tod
    } else {
        DAY0_US - 1 - (code(p.year, p.month, p.day) * DAY_US + tod)
    }
}

/// Microseconds since the epoch back to calendar parts.
pub fn us_to_datetime(us: i64) -> DateTimeParts {
    let (y, m, d, tod) = if us >= DAY0_US {
        let days = us.div_euclid(DAY_US);
        let (y, m, d) = civil_from_days(days);
        (y as u16, m, d, us.rem_euclid(DAY_US))
    } else {
        let x = DAY0_US - 1 - us;
        let (y, m, d) = uncode(x / DAY_US);
        (y, m, d, x % DAY_US)
    };
    let secs = tod / 1_000_000;
    DateTimeParts {
        year: y,
        month: m,
        day: d,
        hour: (secs / 3600) as u8,
        minute: (secs / 60 % 60) as u8,
        second: (secs % 60) as u8,
        micro: (tod % 1_000_000) as u32,
    }
}

/// TIME parts (as the binary protocol sends them) to signed microseconds.
pub fn time_to_us(negative: bool, days: u32, h: u8, m: u8, s: u8, us: u32) -> i64 {
    let v =
        (((days as i64 * 24 + h as i64) * 60 + m as i64) * 60 + s as i64) * 1_000_000 + us as i64;
    if negative {
        -v
    } else {
        v
    }
}

/// `YYYY-MM-DD`.
pub fn write_date(out: &mut String, (y, m, d): (u16, u8, u8)) {
    use std::fmt::Write;
    let _ = write!(out, "{y:04}-{m:02}-{d:02}");
}

/// `YYYY-MM-DD hh:mm:ss.ffffff`.
pub fn write_datetime(out: &mut String, p: DateTimeParts) {
    use std::fmt::Write;
    let _ = write!(
        out,
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}",
        p.year, p.month, p.day, p.hour, p.minute, p.second, p.micro
    );
}

/// `[-]hhh:mm:ss.ffffff`.
pub fn write_time(out: &mut String, us: i64) {
    use std::fmt::Write;
    let sign = if us < 0 { "-" } else { "" };
    let a = us.unsigned_abs();
    let secs = a / 1_000_000;
    let _ = write!(
        out,
        "{sign}{:02}:{:02}:{:02}.{:06}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        a % 1_000_000
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_including_zero_dates() {
        for (y, m, d) in [
            (1970, 1, 1),
            (0, 1, 1),
            (1000, 1, 1),
            (9999, 12, 31),
            (2024, 2, 29),
            (0, 0, 0),
            (2024, 0, 15),
            (2024, 3, 0),
            (2023, 2, 30),
            (9999, 12, 0),
        ] {
            assert_eq!(
                days_to_date(date_to_days(y, m, d)),
                (y, m, d),
                "{y}-{m}-{d}"
            );
        }
        assert_eq!(date_to_days(1970, 1, 1), 0);
        assert_eq!(date_to_days(0, 1, 1), DAY0);
        assert!(date_to_days(0, 0, 0) < DAY0);
    }

    #[test]
    fn datetimes_round_trip_including_zero_dates() {
        for (y, m, d, h, mi, s, us) in [
            (1970, 1, 1, 0, 0, 0, 0),
            (1969, 12, 31, 23, 59, 59, 999_999),
            (9999, 12, 31, 23, 59, 59, 999_999),
            (0, 0, 0, 0, 0, 0, 0),
            (2024, 0, 0, 12, 30, 0, 5),
        ] {
            let p = DateTimeParts {
                year: y,
                month: m,
                day: d,
                hour: h,
                minute: mi,
                second: s,
                micro: us,
            };
            assert_eq!(us_to_datetime(datetime_to_us(p)), p);
        }
    }

    #[test]
    fn time_formatting() {
        let mut s = String::new();
        write_time(&mut s, time_to_us(true, 34, 22, 59, 59, 0));
        assert_eq!(s, "-838:59:59.000000");
        s.clear();
        write_time(&mut s, time_to_us(false, 0, 0, 0, 1, 5));
        assert_eq!(s, "00:00:01.000005");
    }
}
