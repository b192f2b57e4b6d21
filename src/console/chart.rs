//! The overview's chart of logins and failures per minute over the last hour, as numbers an
//! SVG template draws: two bars a minute, logins solid and failures hatched, so the chart reads
//! without colour; the same counts go into a table beside it for screen readers and text.

use chrono::NaiveDateTime;

use crate::service::console::login_stats::MinuteCount;

/// Left edge, width and baseline of the plot in the SVG's own units (its viewBox).
pub const LEFT: i32 = 36;
pub const MINUTE_WIDTH: i32 = 10;
pub const TOP: i32 = 16;
pub const BOTTOM: i32 = 156;

pub struct Bar {
    pub x: i32,
    pub ok_y: i32,
    pub ok_height: i32,
    pub failed_y: i32,
    pub failed_height: i32,
    /// What a tooltip or a screen reader says of this minute.
    pub label: String,
}

/// A minute with any login, for the table.
pub struct Row {
    pub minute: String,
    pub ok: u32,
    pub failed: u32,
}

pub struct Chart {
    pub bars: Vec<Bar>,
    pub rows: Vec<Row>,
    /// The value at the top of the scale.
    pub scale: u32,
    pub total_ok: u32,
    pub total_failed: u32,
    pub right: i32,
    pub middle: i32,
}

fn clock(t: NaiveDateTime) -> String {
    t.format("%H:%M").to_string()
}

impl Chart {
    pub fn new(minutes: &[MinuteCount]) -> Self {
        let peak = minutes
            .iter()
            .map(|m| m.ok.max(m.failed))
            .max()
            .unwrap_or(0);
        // A scale of at least 4 keeps one login from filling the chart.
        let scale = peak.max(4);
        let height = |n: u32| ((BOTTOM - TOP) as u64 * u64::from(n) / u64::from(scale)) as i32;
        let bars = minutes
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let x = LEFT + i as i32 * MINUTE_WIDTH;
                let (ok_height, failed_height) = (height(m.ok), height(m.failed));
                Bar {
                    x,
                    ok_y: BOTTOM - ok_height,
                    ok_height,
                    failed_y: BOTTOM - failed_height,
                    failed_height,
                    label: format!(
                        "{}: {} logins, {} failures",
                        clock(m.minute),
                        m.ok,
                        m.failed
                    ),
                }
            })
            .collect();
        let rows = minutes
            .iter()
            .filter(|m| m.ok + m.failed > 0)
            .map(|m| Row {
                minute: clock(m.minute),
                ok: m.ok,
                failed: m.failed,
            })
            .collect();
        Self {
            bars,
            rows,
            scale,
            total_ok: minutes.iter().map(|m| m.ok).sum(),
            total_failed: minutes.iter().map(|m| m.failed).sum(),
            right: LEFT + minutes.len() as i32 * MINUTE_WIDTH,
            middle: LEFT + minutes.len() as i32 * MINUTE_WIDTH / 2,
        }
    }

    pub fn top(&self) -> i32 {
        TOP
    }

    pub fn bottom(&self) -> i32 {
        BOTTOM
    }

    pub fn left(&self) -> i32 {
        LEFT
    }

    /// The middle of the scale, where a second grid line is drawn.
    pub fn half_y(&self) -> i32 {
        (TOP + BOTTOM) / 2
    }

    pub fn half_label(&self) -> String {
        let half = f64::from(self.scale) / 2.0;
        if half.fract() == 0.0 {
            format!("{half:.0}")
        } else {
            format!("{half:.1}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn minute(i: i64, ok: u32, failed: u32) -> MinuteCount {
        MinuteCount {
            minute: DateTime::from_timestamp(i * 60, 0).unwrap().naive_utc(),
            ok,
            failed,
        }
    }

    #[test]
    fn the_busiest_minute_reaches_the_top_and_empty_minutes_stay_out_of_the_table() {
        let chart = Chart::new(&[minute(0, 0, 0), minute(1, 8, 2), minute(2, 4, 0)]);
        assert_eq!(chart.scale, 8);
        assert_eq!(chart.bars[1].ok_y, TOP);
        assert_eq!(chart.bars[2].ok_height, (BOTTOM - TOP) / 2);
        assert_eq!(chart.bars[0].ok_height, 0);
        assert_eq!(chart.rows.len(), 2);
        assert_eq!((chart.total_ok, chart.total_failed), (12, 2));
        assert_eq!(chart.bars[1].label, "00:01: 8 logins, 2 failures");
    }
}
