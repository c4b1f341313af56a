//! Progress of an import: a bar per phase with counts and an ETA for a person at a
//! terminal (indicatif), plain lines with counts and timings otherwise (a Kubernetes Job's
//! log, CI).

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bars: Option<MultiProgress>,
    /// (phase, rows, seconds) of every finished phase, for `timings`.
    done: Arc<Mutex<Vec<(String, u64, f64)>>>,
}

impl Progress {
    /// Bars when standard error is a terminal, lines otherwise.
    pub fn detect() -> Progress {
        Progress {
            bars: std::io::stderr()
                .is_terminal()
                .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            done: Arc::default(),
        }
    }

    /// Plain lines whatever the terminal.
    pub fn plain() -> Progress {
        Progress {
            bars: None,
            done: Arc::default(),
        }
    }

    /// (phase, rows, seconds) of the phases finished so far.
    pub fn timings(&self) -> Vec<(String, u64, f64)> {
        self.done.lock().map(|d| d.clone()).unwrap_or_default()
    }

    /// A phase of `total` items (0: unknown).
    pub fn phase(&self, name: &str, total: u64) -> Phase {
        let bar = self.bars.as_ref().map(|m| {
            let bar = m.add(if total > 0 {
                ProgressBar::new(total)
            } else {
                ProgressBar::new_spinner()
            });
            let template = if total > 0 {
                "{prefix:>26} [{bar:30}] {human_pos}/{human_len} {per_sec} ETA {eta}"
            } else {
                "{prefix:>26} {spinner} {human_pos} {elapsed}"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(name.to_string());
            bar
        });
        Phase {
            name: name.to_string(),
            bar,
            started: Instant::now(),
            done: self.done.clone(),
        }
    }

    /// A line above the bars (or on its own).
    pub fn line(&self, text: &str) {
        match &self.bars {
            Some(m) => {
                let _ = m.println(text);
            }
            None => eprintln!("{text}"),
        }
    }
}

pub struct Phase {
    name: String,
    bar: Option<ProgressBar>,
    started: Instant,
    done: Arc<Mutex<Vec<(String, u64, f64)>>>,
}

impl Phase {
    pub fn inc(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    /// Ends the phase; `rows` (when not 0) is what it counted.
    pub fn finish(&self, rows: u64) {
        let secs = self.started.elapsed().as_secs_f64();
        if let Ok(mut d) = self.done.lock() {
            d.push((self.name.clone(), rows, secs));
        }
        match &self.bar {
            Some(b) => b.finish(),
            None if rows > 0 => eprintln!(
                "import: {:<28} {rows:>9} rows {secs:>7.2} s ({:.0} rows/s)",
                self.name,
                rows as f64 / secs.max(1e-6)
            ),
            None => eprintln!("import: {:<28} {:>14} {secs:>7.2} s", self.name, ""),
        }
    }
}
