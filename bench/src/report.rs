//! Result rows and their two renderings: JSON lines and a readable table.

use serde::Serialize;

/// One measured case: our figure, the baseline's, in the same unit (higher is better).
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
}

impl Row {
    /// `ours / baseline`: above 1 we beat the baseline.
    pub fn ratio(&self) -> f64 {
        self.ours / self.baseline
    }

    /// One JSON object on one line, fields in this order:
    /// `{"suite":..,"case":..,"baseline":..,"ours":..,"ratio":..,"unit":..}`.
    pub fn to_json_line(&self) -> String {
        let line = JsonRow {
            suite: self.suite,
            case: &self.case,
            baseline: round(self.baseline, 1),
            ours: round(self.ours, 1),
            ratio: round(self.ratio(), 3),
            unit: self.unit,
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
}

fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// The rows as an aligned table with a header line.
pub fn table(rows: &[Row]) -> String {
    let header = ["suite", "case", "baseline", "ours", "ratio", "unit"].map(String::from);
    let lines: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.suite.to_string(),
                r.case.clone(),
                format!("{:.0}", r.baseline),
                format!("{:.0}", r.ours),
                format!("{:.3}", r.ratio()),
                r.unit.to_string(),
            ]
        })
        .collect();
    let mut widths = header.clone().map(|h| h.len());
    for line in &lines {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.len());
        }
    }
    let mut out = String::new();
    for line in std::iter::once(&header).chain(&lines) {
        let [suite, case, baseline, ours, ratio, unit] = line;
        let [ws, wc, wb, wo, wr, _] = widths;
        out.push_str(&format!(
            "{suite:<ws$}  {case:<wc$}  {baseline:>wb$}  {ours:>wo$}  {ratio:>wr$}  {unit}\n"
        ));
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
        Row { suite: "runtime", case: "c".into(), baseline: 200.0, ours: 100.0, unit: "x/s" }
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
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[7.0]), 7.0);
    }
}
