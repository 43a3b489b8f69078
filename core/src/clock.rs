//! Time: the current Unix time and the date forms S3 reads and writes (ISO 8601, `x-amz-date`, HTTP dates).

use crate::codec::digits;

/// Seconds since the Unix epoch now (0 if the clock is before 1970).
///
/// For native callers (host tools, tests); the Spin adapter passes its own clock into the core.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32;
    let y = yoe + era * 400;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Seconds since the epoch of a validated civil time, minus `offset_secs` (its zone's distance
/// east of UTC); `None` if any field is out of range or the result is before 1970.
fn civil_to_unix(y: u32, mo: u32, d: u32, hms: (u32, u32, u32), offset_secs: i64) -> Option<u64> {
    let (h, mi, s) = hms;
    let y = i64::from(y);
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59
    {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    u64::try_from(days * 86_400 + i64::from(h * 3600 + mi * 60 + s) - offset_secs).ok()
}

/// ISO 8601 as S3 writes it in XML (`LastModified`), e.g. `2013-05-24T00:00:00.000Z`.
pub fn iso8601(unix_secs: u64) -> String {
    let (y, m, d) = civil_from_days((unix_secs / 86_400) as i64);
    let s = unix_secs % 86_400;
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000Z", s / 3600, s / 60 % 60, s % 60)
}

/// `YYYYMMDDTHHMMSSZ` for a Unix time, e.g. `20130524T000000Z`.
pub fn amz_date(unix_secs: u64) -> String {
    let (y, m, d) = civil_from_days((unix_secs / 86_400) as i64);
    let s = unix_secs % 86_400;
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", s / 3600, s / 60 % 60, s % 60)
}

/// Parse `YYYYMMDDTHHMMSSZ` (the `x-amz-date` format, ISO 8601 basic).
pub fn parse_amz_date(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let hms = (digits(s.get(9..11)?)?, digits(s.get(11..13)?)?, digits(s.get(13..15)?)?);
    civil_to_unix(digits(s.get(0..4)?)?, digits(s.get(4..6)?)?, digits(s.get(6..8)?)?, hms, 0)
}

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const LONG_WEEKDAYS: [&str; 7] =
    ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
const MONTHS: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

fn month(name: &str) -> Option<u32> {
    MONTHS.iter().position(|m| *m == name).map(|i| i as u32 + 1)
}

/// `HH:MM:SS`, two digits each.
fn time_of_day(s: &str) -> Option<(u32, u32, u32)> {
    let mut it = s.split(':');
    let (h, m, sec) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || h.len() != 2 || m.len() != 2 || sec.len() != 2 {
        return None;
    }
    Some((digits(h)?, digits(m)?, digits(sec)?))
}

/// A zone's distance east of UTC in seconds: `GMT`, `UTC`, `UT`, `Z` or `+hhmm`/`-hhmm` (RFC 5322).
fn zone_offset(zone: &str) -> Option<i64> {
    if matches!(zone, "GMT" | "UTC" | "UT" | "Z") {
        return Some(0);
    }
    let (sign, hhmm) = match zone.as_bytes().first()? {
        b'+' => (1, zone.get(1..)?),
        b'-' => (-1, zone.get(1..)?),
        _ => return None,
    };
    if hhmm.len() != 4 {
        return None;
    }
    let (h, m) = (digits(hhmm.get(..2)?)?, digits(hhmm.get(2..)?)?);
    (h <= 23 && m <= 59).then(|| sign * i64::from(h * 3600 + m * 60))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 1123; the zone may also be numeric, as RFC 5322 and
/// Python's `email.utils.formatdate` write it: `-0000`, `+0100`).
fn parse_rfc1123(s: &str) -> Option<u64> {
    let mut it = s.split_whitespace();
    let weekday = it.next()?.strip_suffix(',')?;
    let (day, mon, year, time, zone) = (it.next()?, it.next()?, it.next()?, it.next()?, it.next()?);
    if !WEEKDAYS.contains(&weekday) || it.next().is_some() || day.len() > 2 || year.len() != 4 {
        return None;
    }
    civil_to_unix(digits(year)?, month(mon)?, digits(day)?, time_of_day(time)?, zone_offset(zone)?)
}

/// `Sunday, 06-Nov-94 08:49:37 GMT` (RFC 850); two-digit years below 70 are 20xx.
fn parse_rfc850(s: &str) -> Option<u64> {
    let mut it = s.split_whitespace();
    let weekday = it.next()?.strip_suffix(',')?;
    let (date, time) = (it.next()?, it.next()?);
    if !LONG_WEEKDAYS.contains(&weekday) || it.next()? != "GMT" || it.next().is_some() {
        return None;
    }
    let mut dmy = date.split('-');
    let (day, mon, yy) = (dmy.next()?, dmy.next()?, dmy.next()?);
    if dmy.next().is_some() || day.len() != 2 || yy.len() != 2 {
        return None;
    }
    let yy = digits(yy)?;
    let year = if yy < 70 { 2000 + yy } else { 1900 + yy };
    civil_to_unix(year, month(mon)?, digits(day)?, time_of_day(time)?, 0)
}

/// `Sun Nov  6 08:49:37 1994` (C `asctime`, always UTC).
fn parse_asctime(s: &str) -> Option<u64> {
    let mut it = s.split_whitespace();
    let (weekday, mon, day, time, year) = (it.next()?, it.next()?, it.next()?, it.next()?, it.next()?);
    if !WEEKDAYS.contains(&weekday) || it.next().is_some() || day.len() > 2 || year.len() != 4 {
        return None;
    }
    civil_to_unix(digits(year)?, month(mon)?, digits(day)?, time_of_day(time)?, 0)
}

/// Parse an HTTP date, as S3 reads a `Date:` header: the RFC 2616 §3.3 full forms (RFC 1123 with
/// `GMT`, `UTC` or a numeric zone, RFC 850, asctime), converted to UTC.
pub fn parse_http_date(s: &str) -> Option<u64> {
    let s = s.trim();
    parse_rfc1123(s).or_else(|| parse_rfc850(s)).or_else(|| parse_asctime(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_date_formats_and_parses() {
        assert_eq!(amz_date(0), "19700101T000000Z");
        assert_eq!(amz_date(1_369_353_600), "20130524T000000Z");
        assert_eq!(amz_date(1_440_938_160), "20150830T123600Z");
        assert_eq!(amz_date(951_782_400), "20000229T000000Z");
        assert_eq!(parse_amz_date("20130524T000000Z"), Some(1_369_353_600));
        assert_eq!(parse_amz_date("20150830T123600Z"), Some(1_440_938_160));
        for t in [
            0u64,
            59,
            86_399,
            86_400,
            951_782_399,
            4_102_444_800,
            1_795_625_550,
            253_402_300_799,
        ] {
            assert_eq!(parse_amz_date(&amz_date(t)), Some(t), "{t}");
        }
    }

    #[test]
    fn iso8601_as_s3_writes_it() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_440_938_160), "2015-08-30T12:36:00.000Z");
    }

    #[test]
    fn parse_amz_date_rejects_invalid() {
        for bad in [
            "",
            "20130524T000000",
            "20130524T000000ZZ",
            "20130524 000000Z",
            "2013052AT000000Z",
            "20131324T000000Z",
            "20130532T000000Z",
            "20130229T000000Z",
            "21000229T000000Z",
            "20130524T240000Z",
            "20130524T006000Z",
            "20130524T000060Z",
            "19691231T235959Z",
            "+0130524T000000Z",
            "2013-05-24T00:00Z",
            "20130524T00000éZ",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad:?}");
        }
        assert!(parse_amz_date("20000229T000000Z").is_some());
        assert!(parse_amz_date("20240229T235959Z").is_some());
    }

    #[test]
    fn parse_http_date_rfc1123() {
        assert_eq!(parse_http_date("Wed, 25 Nov 2026 16:52:30 GMT"), Some(1_795_625_550));
        assert_eq!(parse_http_date("Fri, 24 May 2013 00:00:00 GMT"), Some(1_369_353_600));
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse_http_date("Wed, 25 Nov 2026 16:52:30 UTC"), Some(1_795_625_550));
        assert_eq!(parse_http_date("Wed, 5 Nov 2026 16:52:30 GMT"), parse_http_date("Thu, 05 Nov 2026 16:52:30 GMT"));
    }

    #[test]
    fn parse_http_date_numeric_zones_are_converted_to_utc() {
        // What botocore writes (email.utils.formatdate): `-0000` means UTC.
        assert_eq!(parse_http_date("Wed, 25 Nov 2026 16:52:30 -0000"), Some(1_795_625_550));
        assert_eq!(parse_http_date("Wed, 25 Nov 2026 16:52:30 +0000"), Some(1_795_625_550));
        assert_eq!(parse_http_date("Wed, 25 Nov 2026 17:52:30 +0100"), Some(1_795_625_550));
        assert_eq!(parse_http_date("Wed, 25 Nov 2026 11:22:30 -0530"), Some(1_795_625_550));
        // Across midnight and a month end.
        assert_eq!(
            parse_http_date("Tue, 01 Dec 2026 01:00:00 +0200"),
            parse_http_date("Mon, 30 Nov 2026 23:00:00 GMT")
        );
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:59:59 +0100"), None, "before the epoch");
    }

    #[test]
    fn parse_http_date_obsolete_forms() {
        assert_eq!(parse_http_date("Wednesday, 25-Nov-26 16:52:30 GMT"), Some(1_795_625_550));
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"));
        assert_eq!(parse_http_date("Wed Nov 25 16:52:30 2026"), Some(1_795_625_550));
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"));
    }

    #[test]
    fn parse_http_date_rejects_invalid() {
        for bad in [
            "",
            "Wed 25 Nov 2026 16:52:30 GMT",
            "Wed, 25 Nov 2026 16:52:30",
            "Wed, 25 Nov 2026 16:52:30 EST",
            "Wed, 25 Nov 2026 16:52:30 +01",
            "Wed, 25 Nov 2026 16:52:30 +2400",
            "Wed, 25 Nov 2026 16:52:30 +0160",
            "Wed, 25 Nov 2026 16:52:30 --100",
            "Wed, 25 Foo 2026 16:52:30 GMT",
            "Wed, 31 Nov 2026 16:52:30 GMT",
            "Wed, 25 Nov 26 16:52:30 GMT",
            "Wed, 25 Nov 2026 16:52 GMT",
            "Wed, 25 Nov 2026 16:52:30:00 GMT",
            "Wed, 25 Nov 2026 16:52:30 GMT x",
            "Wed, 25 Nov 2026 1:52:30 GMT",
            "Wednesday, 25-Nov-2026 16:52:30 GMT",
            "Wednesday, 25-Nov-26 16:52:30 +0100",
            "Wed, 25-Nov-26 16:52:30 GMT",
            "Wed Nov 25 16:52:30 26",
            "Wed Nov 25 16:52:30 2026 GMT",
            "20261125T165230Z",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad:?}");
        }
    }
}
