//! `strftime_now(format)` for chat templates (Llama 3.x writes "Today Date: 26 Jul 2024"),
//! without a date-time dependency: UTC only, the common C/glibc specifiers.

/// A UTC calendar time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DateTime {
    pub year: i64,
    /// 1..=12
    pub month: u32,
    /// 1..=31
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// 0 = Sunday.
    pub weekday: u32,
    /// 1..=366
    pub yday: u32,
}

const MONTHS: [&str; 12] =
    ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
const DAYS: [&str; 7] = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

impl DateTime {
    /// Converts seconds since the Unix epoch (UTC).
    pub fn from_unix(secs: i64) -> DateTime {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        // Howard Hinnant's days-from-civil inverse.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        const CUM: [u32; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
        let yday = CUM.get((month - 1) as usize).copied().unwrap_or(0) + day + u32::from(leap && month > 2);
        DateTime {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem % 3600 / 60) as u32,
            second: (rem % 60) as u32,
            weekday: (days + 4).rem_euclid(7) as u32, // 1970-01-01 was a Thursday
            yday,
        }
    }

    /// Formats with `%Y %y %m %d %e %H %I %M %S %p %B %b %h %A %a %j %F %T %D %%`, and glibc's `%-d`
    /// style (no padding). Unknown specifiers are copied as written.
    pub fn format(&self, fmt: &str) -> String {
        let mut out = String::with_capacity(fmt.len() + 16);
        let mut chars = fmt.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            let no_pad = chars.peek() == Some(&'-');
            if no_pad {
                chars.next();
            }
            let Some(spec) = chars.next() else {
                out.push('%');
                break;
            };
            let num = |v: i64, width: usize| if no_pad { v.to_string() } else { format!("{v:0width$}") };
            let month_name = MONTHS.get((self.month as usize).wrapping_sub(1)).copied().unwrap_or("");
            let day_name = DAYS.get(self.weekday as usize).copied().unwrap_or("");
            let hour12 = if self.hour.is_multiple_of(12) { 12 } else { self.hour % 12 };
            match spec {
                'Y' => out.push_str(&self.year.to_string()),
                'y' => out.push_str(&num(self.year.rem_euclid(100), 2)),
                'm' => out.push_str(&num(self.month.into(), 2)),
                'd' => out.push_str(&num(self.day.into(), 2)),
                'e' => out.push_str(&format!("{:>2}", self.day)),
                'H' => out.push_str(&num(self.hour.into(), 2)),
                'I' => out.push_str(&num(hour12.into(), 2)),
                'M' => out.push_str(&num(self.minute.into(), 2)),
                'S' => out.push_str(&num(self.second.into(), 2)),
                'p' => out.push_str(if self.hour < 12 { "AM" } else { "PM" }),
                'B' => out.push_str(month_name),
                'b' | 'h' => out.push_str(month_name.get(..3).unwrap_or(month_name)),
                'A' => out.push_str(day_name),
                'a' => out.push_str(day_name.get(..3).unwrap_or(day_name)),
                'j' => out.push_str(&num(self.yday.into(), 3)),
                'F' => out.push_str(&format!("{}-{:02}-{:02}", self.year, self.month, self.day)),
                'T' => out.push_str(&format!("{:02}:{:02}:{:02}", self.hour, self.minute, self.second)),
                'D' => out.push_str(&format!("{:02}/{:02}/{:02}", self.month, self.day, self.year.rem_euclid(100))),
                '%' => out.push('%'),
                other => {
                    out.push('%');
                    if no_pad {
                        out.push('-');
                    }
                    out.push(other);
                }
            }
        }
        out
    }
}

/// Seconds since the Unix epoch now; 0 where the platform has no clock (wasm32 without WASI),
/// so callers there should pass the time explicitly.
pub(crate) fn unix_now() -> i64 {
    #[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
    {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(0))
            .unwrap_or(0)
    }
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        let t = DateTime::from_unix(0);
        assert_eq!((t.year, t.month, t.day, t.weekday, t.yday), (1970, 1, 1, 4, 1));
        // 2024-07-26 13:25:09 UTC, a Friday, day 208 of a leap year.
        let t = DateTime::from_unix(1_722_000_309);
        assert_eq!((t.year, t.month, t.day, t.hour, t.minute, t.second), (2024, 7, 26, 13, 25, 9));
        assert_eq!(t.weekday, 5);
        assert_eq!(t.yday, 208);
        let t = DateTime::from_unix(951_782_400); // 2000-02-29
        assert_eq!((t.year, t.month, t.day), (2000, 2, 29));
        let t = DateTime::from_unix(-86_400);
        assert_eq!((t.year, t.month, t.day), (1969, 12, 31));
    }

    #[test]
    fn formats() {
        let t = DateTime::from_unix(1_722_000_309);
        assert_eq!(t.format("%d %b %Y"), "26 Jul 2024");
        assert_eq!(t.format("%B %-d, %Y (%A) %H:%M:%S %p %j %%"), "July 26, 2024 (Friday) 13:25:09 PM 208 %");
        assert_eq!(t.format("%F %T %q"), "2024-07-26 13:25:09 %q");
        let t = DateTime::from_unix(1_704_153_600); // 2024-01-02 00:00
        assert_eq!(t.format("%-m/%-d %I%p %e"), "1/2 12AM  2");
    }
}
