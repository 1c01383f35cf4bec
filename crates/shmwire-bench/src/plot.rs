//! The plot: p50 one-way latency against payload size, one panel per wait mode, one line per
//! contender (log-log), as SVG.

use std::path::Path;

use plotters::prelude::*;

use crate::report::{human_size, Report};
use crate::transport::{Class, Mode};
use crate::SIZES;

/// Writes the plot of `report` to `path` (SVG).
pub(crate) fn write(report: &Report, path: &Path) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (1200, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let (title, body) = root.split_vertically(40);
    title.titled(
        &format!(
            "One-way latency (p50, round trip / 2) — {}, {} CPUs",
            report.machine.cpu, report.machine.cpus
        ),
        ("sans-serif", 18),
    )?;
    let panels = body.split_evenly((1, 2));
    let (lo, hi) = (SIZES[0] as f64, *SIZES.last().expect("sizes") as f64);
    // One colour per contender in both panels.
    let mut order: Vec<&str> = Vec::new();
    for r in &report.latency {
        if !order.contains(&r.id.as_str()) {
            order.push(&r.id);
        }
    }
    for (panel, mode) in panels.iter().zip([Mode::Spin, Mode::Block]) {
        let rows: Vec<_> = report.latency.iter().filter(|r| r.mode == mode).collect();
        let ymin = rows
            .iter()
            .map(|r| r.p50_ns.median)
            .fold(f64::MAX, f64::min);
        let ymax = rows.iter().map(|r| r.p50_ns.median).fold(1.0, f64::max);
        let ymin = if ymin == f64::MAX { 10.0 } else { ymin / 1.5 };
        let mut chart = ChartBuilder::on(panel)
            .caption(mode.title(), ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(
                (lo / 1.3..hi * 1.3)
                    .log_scale()
                    .with_key_points(SIZES.iter().map(|&s| s as f64).collect()),
                (ymin..ymax * 2.0).log_scale(),
            )?;
        chart
            .configure_mesh()
            .x_desc("payload")
            .y_desc("one-way latency")
            .x_label_formatter(&|x| human_size(*x as usize))
            .y_label_formatter(&|y| duration(*y))
            .draw()?;
        let mut ids: Vec<(&str, &str, Class)> = Vec::new();
        for r in &rows {
            if !ids.iter().any(|(id, _, _)| *id == r.id) {
                ids.push((&r.id, &r.label, r.class));
            }
        }
        for (id, label, class) in &ids {
            let k = order.iter().position(|o| o == id).unwrap_or(0);
            let color = Palette99::pick(k).to_rgba();
            let style = match class {
                Class::Floor => ShapeStyle::from(&BLACK).stroke_width(2),
                Class::Ours => color.stroke_width(3),
                _ => color.stroke_width(1),
            };
            let points: Vec<(f64, f64)> = rows
                .iter()
                .filter(|r| r.id == *id)
                .map(|r| (r.size as f64, r.p50_ns.median))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), style))?
                .label(*label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, style.filled())))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

fn duration(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.0} µs", ns / 1e3)
    } else {
        format!("{:.0} ms", ns / 1e6)
    }
}
