//! The interface families: counters, histograms and the info series of each interface
//! series (see [`super::fold`] for how interfaces become series).

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use super::encode::{family, info_family, HistSample};
use super::options::{HistFamily, MetricsOptions};
use super::series::Series;
use crate::model::{Availability, IfaceCounters};

/// The interface families: one sample per series.
pub fn encode_interfaces(
    enc: &mut DescriptorEncoder,
    av: &Availability,
    series: &[Series],
    opts: &MetricsOptions,
) -> Result<(), std::fmt::Error> {
    let hist_on = |f: HistFamily| !opts.no_histograms.contains(&f);

    info_family(
        enc,
        "sirqtop_interface",
        "One series per interface to join on: its veth peer and the pod, Kubernetes \
         namespace and container owning its network namespace.",
        series.iter().filter_map(|s| {
            let i = s.info.as_ref()?;
            let mut l = s.labels();
            l.extend([
                ("peer", i.peer.clone()),
                ("peer_netns", i.peer_netns.clone()),
                ("pod", i.pod.clone()),
                ("namespace", i.namespace.clone()),
                ("container", i.container.clone()),
            ]);
            Some(l)
        }),
    )?;
    if av.tx {
        counter_family(
            enc,
            "sirqtop_interface_transmit_packets",
            "Packets transmitted by the interface (veth_xmit).",
            series,
            |c| c.tx_packets,
        )?;
        counter_family(
            enc,
            "sirqtop_interface_transmit_bytes",
            "Bytes transmitted by the interface (veth_xmit).",
            series,
            |c| c.tx_bytes,
        )?;
    }
    if av.enqueue {
        counter_family(
            enc,
            "sirqtop_interface_backlog_enqueue_packets",
            "Packets for this interface enqueued to a per-CPU backlog (netif_rx).",
            series,
            |c| c.rx_enqueued,
        )?;
    }
    if av.receive {
        counter_family(
            enc,
            "sirqtop_interface_receive_packets",
            "Packets received on the interface (netif_receive_skb).",
            series,
            |c| c.rx_packets,
        )?;
    }
    if av.raises {
        counter_family(
            enc,
            "sirqtop_interface_net_rx_raises",
            "NET_RX softirq raises caused by the interface.",
            series,
            |c| c.net_rx_raises,
        )?;
    }
    if av.softirq_time {
        family(
            enc,
            "sirqtop_interface_softirq",
            "NET_RX softirq CPU time spent receiving the interface's packets.",
            Some(&Unit::Seconds),
            MetricType::Counter,
            series.iter().map(|s| {
                (
                    s.labels(),
                    ConstCounter::new(s.counters.softirq_ns as f64 * 1e-9),
                )
            }),
        )?;
    }
    if av.drops {
        counter_family(
            enc,
            "sirqtop_interface_dropped_packets",
            "Packets freed as dropped while on the interface (skb:kfree_skb).",
            series,
            |c| c.dropped,
        )?;
    }
    // As in the JSON: known where receives are timed (not with --lite), polls with
    // --napi-polls.
    if av.backlog_wait {
        counter_family(
            enc,
            "sirqtop_interface_napi_packets",
            "Packets received without a backlog enqueue: delivered by the device's own NAPI \
             (a NIC, a veth with XDP or GRO, a tunnel).",
            series,
            |c| c.napi_packets,
        )?;
    }
    if av.napi {
        counter_family(
            enc,
            "sirqtop_interface_napi_polls",
            "Polls of the device's own NAPI (napi:napi_poll, with --napi-polls).",
            series,
            |c| c.napi_polls,
        )?;
    }
    if av.veth_hop && hist_on(HistFamily::VethHop) {
        family(
            enc,
            "sirqtop_interface_veth_hop",
            "Time from veth transmit to receive on the peer.",
            Some(&Unit::Seconds),
            MetricType::Histogram,
            series.iter().map(|s| (s.labels(), HistSample(&s.veth_hop))),
        )?;
    }
    if av.backlog_wait && hist_on(HistFamily::BacklogWait) {
        family(
            enc,
            "sirqtop_interface_backlog_wait",
            "Time from backlog enqueue to receive.",
            Some(&Unit::Seconds),
            MetricType::Histogram,
            series
                .iter()
                .map(|s| (s.labels(), HistSample(&s.backlog_wait))),
        )?;
    }
    Ok(())
}

fn counter_family(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: &[Series],
    value: impl Fn(&IfaceCounters) -> u64,
) -> Result<(), std::fmt::Error> {
    family(
        enc,
        name,
        help,
        None,
        MetricType::Counter,
        series
            .iter()
            .map(|s| (s.labels(), ConstCounter::new(value(&s.counters)))),
    )
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{iface, render, sample, snapshot};
    use super::super::fold::Folder;
    use super::super::series::OTHER;
    use super::*;
    use crate::model::{Interface, PeerRef};
    use crate::netns::ContainerRef;

    #[test]
    fn counters_histograms_and_info_of_an_interface() {
        let mut a = iface(1, 2, "shop/web-0", "eth0", 5_000);
        a.veth_hop.record(5_000);
        a.veth_hop.record(20_000);
        a.counters.napi_packets = 4;
        a.peer = Some(PeerRef {
            netns: 9,
            ifindex: 7,
            cookie: 0,
            name: Some("vethab12".into()),
            netns_label: Some("host".into()),
        });
        let mut c = ContainerRef::new("containerd", &"a".repeat(64), Some("u".into()));
        c.pod = Some("web-0".into());
        c.pod_namespace = Some("shop".into());
        c.name = Some("nginx".into());
        a.container = Some(c);
        let text = render(snapshot(vec![a]), MetricsOptions::default(), false);
        let l = r#"{netns="shop/web-0",interface="eth0",kind="veth"}"#;
        assert_eq!(
            sample(
                &text,
                &format!("sirqtop_interface_transmit_packets_total{l}")
            ),
            Some(10.0)
        );
        assert_eq!(
            sample(
                &text,
                &format!("sirqtop_interface_receive_packets_total{l}")
            ),
            Some(7.0)
        );
        assert_eq!(
            sample(&text, &format!("sirqtop_interface_napi_packets_total{l}")),
            Some(4.0)
        );
        assert_eq!(
            sample(&text, &format!("sirqtop_interface_napi_polls_total{l}")),
            Some(0.0),
            "napi:napi_poll attached here"
        );
        assert_eq!(
            sample(
                &text,
                &format!("sirqtop_interface_softirq_seconds_total{l}")
            ),
            Some(5e-6)
        );
        assert_eq!(
            sample(
                &text,
                &format!("sirqtop_interface_veth_hop_seconds_count{l}")
            ),
            Some(2.0)
        );
        assert_eq!(
            sample(&text, &format!("sirqtop_interface_veth_hop_seconds_sum{l}")),
            Some(25e-6)
        );
        // Cumulative: both by 32.768 µs, one by 8.192 µs.
        let bucket = |le: &str| {
            sample(
                &text,
                &format!(
                    "sirqtop_interface_veth_hop_seconds_bucket{{le=\"{le}\",\
                     netns=\"shop/web-0\",interface=\"eth0\",kind=\"veth\"}}"
                ),
            )
        };
        assert_eq!(bucket("0.000008192"), Some(1.0), "{text}");
        assert_eq!(bucket("0.000032768"), Some(2.0));
        assert_eq!(bucket("+Inf"), Some(2.0));
        assert!(text.contains(
            r#"sirqtop_interface_info{netns="shop/web-0",interface="eth0",kind="veth",peer="vethab12",peer_netns="host",pod="web-0",namespace="shop",container="nginx"} 1"#
        ), "{text}");
        assert_eq!(
            sample(
                &text,
                r#"sirqtop_lost_events_total{reason="ringbuf_dropped"}"#
            ),
            Some(3.0)
        );
        assert!(text.contains("sirqtop_build_info{version="));
        assert!(text.ends_with("# EOF\n"));
        // The Prometheus text format names counters with _total in TYPE and has no EOF.
        let prom = render(
            snapshot(vec![iface(1, 2, "a", "eth0", 1)]),
            MetricsOptions::default(),
            true,
        );
        assert!(prom.contains("# TYPE sirqtop_interface_transmit_packets_total counter"));
        assert!(!prom.contains("# EOF"));
    }

    #[test]
    fn same_labels_are_one_series_and_the_tail_is_other() {
        // A StatefulSet pod recreated under its name: the gone and the new interface are
        // one series (their sum), never two samples with the same labels.
        let mut old = iface(1, 2, "shop/web-0", "eth0", 100);
        old.gone = true;
        let new = iface(3, 2, "shop/web-0", "eth0", 50);
        let series = Folder::new(None).fold(&[old, new]);
        assert_eq!(series.len(), 1);
        assert_eq!(series[0].counters.tx_packets, 20);
        assert_eq!(series[0].counters.softirq_ns, 150);

        let ifaces: Vec<Interface> = (0..5)
            .map(|n| iface(10 + n, 2, &format!("p{n}"), "eth0", u64::from(n) * 10))
            .collect();
        let series = Folder::new(Some(2)).fold(&ifaces);
        let names: Vec<&str> = series.iter().map(|s| s.netns.as_str()).collect();
        assert_eq!(
            names,
            ["p4", "p3", OTHER],
            "top 2 by softirq time, then _other"
        );
        assert_eq!(series[2].counters.tx_packets, 30);
        assert_eq!(series[2].counters.softirq_ns, 30);
        let text = render(
            snapshot(ifaces),
            MetricsOptions {
                max_interfaces: Some(2),
                ..MetricsOptions::default()
            },
            false,
        );
        assert_eq!(
            sample(
                &text,
                r#"sirqtop_interface_transmit_packets_total{netns="_other",interface="_other",kind=""}"#
            ),
            Some(30.0)
        );
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("sirqtop_interface_info{"))
                .count(),
            2,
            "_other has no info series"
        );
    }
}
