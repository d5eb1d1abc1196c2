//! What `serve` exposes: the switchable histogram families (`--no-histogram`) and the
//! exposition's options.

/// Histogram families that can be switched off (`--no-histogram FAMILY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HistFamily {
    VethHop,
    BacklogWait,
    SoftirqRun,
    SoftirqDelay,
}

impl HistFamily {
    pub const ALL: [HistFamily; 4] = [
        HistFamily::VethHop,
        HistFamily::BacklogWait,
        HistFamily::SoftirqRun,
        HistFamily::SoftirqDelay,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            HistFamily::VethHop => "veth_hop",
            HistFamily::BacklogWait => "backlog_wait",
            HistFamily::SoftirqRun => "softirq_run",
            HistFamily::SoftirqDelay => "softirq_delay",
        }
    }
}

impl std::str::FromStr for HistFamily {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        HistFamily::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = HistFamily::ALL.iter().map(|f| f.as_str()).collect();
                format!(
                    "unknown histogram family '{s}' (one of: {})",
                    names.join(", ")
                )
            })
    }
}

/// What the exposition shows.
#[derive(Debug, Clone, Default)]
pub struct MetricsOptions {
    /// Keep the N interfaces with the most softirq time (then receive packets, then
    /// transmit packets) as their own series and sum the rest into `interface="_other"`.
    pub max_interfaces: Option<usize>,
    /// Histogram families left out.
    pub no_histograms: Vec<HistFamily>,
}
