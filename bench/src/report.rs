//! Result rows and their two renderings: JSON lines and a readable table.

use serde::Serialize;

/// One measured case: our figure, the baseline's, in the same unit.
#[derive(Clone, PartialEq, Debug)]
pub struct Row {
    /// The suite, e.g. `runtime`.
    pub suite: &'static str,
    /// The case within the suite, e.g. `propose/accounts=1000/txs_per_block=1000`.
    pub case: String,
    /// The baseline's figure.
    pub baseline: f64,
    /// Our figure.
    pub ours: f64,
    /// The unit of both figures, e.g. `transfers/s`.
    pub unit: &'static str,
    /// Whether a lower figure is better (latencies), rather than a higher one (throughputs).
    pub lower_is_better: bool,
    /// The targets this case is held to (printed with the figures, never enforced).
    pub goals: Vec<Goal>,
}

/// A target for one case.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Goal {
    /// The ratio is at least this.
    RatioAtLeast(f64),
    /// Our figure is at most this (in the row's unit).
    OursAtMost(f64),
    /// Our figure is at least this (in the row's unit).
    OursAtLeast(f64),
}

impl Goal {
    /// Whether `row` meets this goal.
    pub fn met(&self, row: &Row) -> bool {
        match *self {
            Goal::RatioAtLeast(bound) => row.ratio() >= bound,
            Goal::OursAtMost(bound) => row.ours <= bound,
            Goal::OursAtLeast(bound) => row.ours >= bound,
        }
    }

    /// The goal in words, e.g. `ratio >= 3` or `ours <= 300 ns`.
    pub fn describe(&self, unit: &str) -> String {
        match *self {
            Goal::RatioAtLeast(bound) => format!("ratio >= {bound}"),
            Goal::OursAtMost(bound) => format!("ours <= {bound} {unit}"),
            Goal::OursAtLeast(bound) => format!("ours >= {bound} {unit}"),
        }
    }
}

impl Row {
    /// A case where higher figures are better (throughputs), without goals.
    pub fn throughput(
        suite: &'static str,
        case: String,
        baseline: f64,
        ours: f64,
        unit: &'static str,
    ) -> Self {
        Self { suite, case, baseline, ours, unit, lower_is_better: false, goals: Vec::new() }
    }

    /// A case where lower figures are better (latencies), without goals.
    pub fn latency(suite: &'static str, case: String, baseline: f64, ours: f64, unit: &'static str) -> Self {
        Self { lower_is_better: true, ..Self::throughput(suite, case, baseline, ours, unit) }
    }

    /// The same row held to `goals`.
    pub fn with_goals(self, goals: &[Goal]) -> Self {
        Self { goals: goals.to_vec(), ..self }
    }

    /// How much better we are than the baseline: `ours / baseline`, or `baseline / ours` when
    /// lower figures are better. Above 1 we beat the baseline.
    pub fn ratio(&self) -> f64 {
        if self.lower_is_better {
            self.baseline / self.ours
        } else {
            self.ours / self.baseline
        }
    }

    /// Whether every goal is met (`None` without goals).
    pub fn goals_met(&self) -> Option<bool> {
        (!self.goals.is_empty()).then(|| self.goals.iter().all(|g| g.met(self)))
    }

    /// The goals and whether they are met, e.g. `ratio >= 3: met`; empty without goals.
    pub fn goal_text(&self) -> String {
        let Some(met) = self.goals_met() else { return String::new() };
        format!("{}: {}", self.goal_list(), if met { "met" } else { "MISSED" })
    }

    fn goal_list(&self) -> String {
        let goals: Vec<String> = self.goals.iter().map(|g| g.describe(self.unit)).collect();
        goals.join(", ")
    }

    /// One JSON object on one line, fields in this order:
    /// `{"suite":..,"case":..,"baseline":..,"ours":..,"ratio":..,"unit":..}`, followed by
    /// `"goal":..,"goal_met":..` for a case with goals.
    pub fn to_json_line(&self) -> String {
        let line = JsonRow {
            suite: self.suite,
            case: &self.case,
            baseline: round(self.baseline, 1),
            ours: round(self.ours, 1),
            ratio: round(self.ratio(), ratio_decimals(self.ratio())),
            unit: self.unit,
            goal: self.goals_met().map(|_| self.goal_list()),
            goal_met: self.goals_met(),
        };
        serde_json::to_string(&line).expect("a row serializes")
    }
}

/// The JSON form of a [`Row`]; a struct so that the fields keep their documented order.
#[derive(Serialize)]
struct JsonRow<'a> {
    suite: &'a str,
    case: &'a str,
    baseline: f64,
    ours: f64,
    ratio: f64,
    unit: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    goal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    goal_met: Option<bool>,
}

/// Decimals that show a ratio: 3, or more below 0.1 so that it keeps 3 significant digits.
fn ratio_decimals(ratio: f64) -> i32 {
    if ratio.is_finite() && ratio > 0.0 {
        (2 - ratio.log10().floor() as i32).clamp(3, 12)
    } else {
        3
    }
}

fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// The rows as an aligned table with a header line; a `goal` column follows when any row has
/// goals.
pub fn table(rows: &[Row]) -> String {
    let header = ["suite", "case", "baseline", "ours", "ratio", "unit", "goal"].map(String::from);
    let lines: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                r.suite.to_string(),
                r.case.clone(),
                format!("{:.0}", r.baseline),
                format!("{:.0}", r.ours),
                format!("{:.*}", ratio_decimals(r.ratio()) as usize, r.ratio()),
                r.unit.to_string(),
                r.goal_text(),
            ]
        })
        .collect();
    let mut widths = header.clone().map(|h| h.len());
    for line in &lines {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.len());
        }
    }
    let with_goals = rows.iter().any(|r| !r.goals.is_empty());
    let mut out = String::new();
    for line in std::iter::once(&header).chain(&lines) {
        let [suite, case, baseline, ours, ratio, unit, goal] = line;
        let [ws, wc, wb, wo, wr, wu, _] = widths;
        let mut text = format!("{suite:<ws$}  {case:<wc$}  {baseline:>wb$}  {ours:>wo$}  {ratio:>wr$}  ");
        if with_goals {
            text.push_str(&format!("{unit:<wu$}  {goal}"));
        } else {
            text.push_str(unit);
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

/// The median of `samples` (the mean of the middle two for an even count).
///
/// Panics if `samples` is empty.
pub fn median(samples: &[f64]) -> f64 {
    assert!(!samples.is_empty(), "the median of no samples");
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> Row {
        Row::throughput("runtime", "c".into(), 200.0, 100.0, "x/s")
    }

    #[test]
    fn json_line_has_the_documented_fields() {
        let line = row().to_json_line();
        assert!(!line.contains('\n'));
        assert_eq!(
            line,
            r#"{"suite":"runtime","case":"c","baseline":200.0,"ours":100.0,"ratio":0.5,"unit":"x/s"}"#
        );
    }

    #[test]
    fn latency_ratio_is_baseline_over_ours_and_goals_are_reported() {
        let row = Row::latency("state", "read".into(), 900.0, 300.0, "ns")
            .with_goals(&[Goal::OursAtMost(300.0), Goal::RatioAtLeast(3.0)]);
        assert_eq!(row.ratio(), 3.0);
        assert_eq!(row.goals_met(), Some(true));
        assert_eq!(
            row.to_json_line(),
            r#"{"suite":"state","case":"read","baseline":900.0,"ours":300.0,"ratio":3.0,"unit":"ns","goal":"ours <= 300 ns, ratio >= 3","goal_met":true}"#
        );
        let slower = Row { ours: 301.0, ..row };
        assert_eq!(slower.goals_met(), Some(false));
        assert!(slower.goal_text().ends_with("MISSED"));
        assert_eq!(Row::throughput("s", "c".into(), 1.0, 2.0, "x/s").goals_met(), None);
        let text = table(&[slower, Row::latency("state", "other".into(), 1.0, 1.0, "ns")]);
        assert!(text.lines().next().unwrap().ends_with("goal"));
        assert!(text.lines().nth(1).unwrap().ends_with("ratio >= 3: MISSED"));
    }

    #[test]
    fn table_aligns_columns() {
        let long = Row { case: "a much longer case".into(), ..row() };
        let text = table(&[row(), long]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("suite"));
        let unit_column = |l: &str| l.rfind("x/s").or_else(|| l.rfind("unit")).unwrap();
        assert_eq!(unit_column(lines[1]), unit_column(lines[2]));
        assert_eq!(unit_column(lines[0]), unit_column(lines[2]));
    }

    #[test]
    fn small_ratios_keep_three_significant_digits() {
        let row = Row::latency("state", "open".into(), 6.0, 20_520.0, "ms");
        assert!(row.to_json_line().contains(r#""ratio":0.000292,"#), "{}", row.to_json_line());
        assert!(table(&[row]).contains(" 0.000292 "));
        assert_eq!(ratio_decimals(12.9), 3);
        assert_eq!(ratio_decimals(0.5), 3);
        assert_eq!(ratio_decimals(0.05), 4);
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[7.0]), 7.0);
    }
}
