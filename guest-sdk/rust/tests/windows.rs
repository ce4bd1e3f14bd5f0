//! Guards the event-time windows of `eddy_sdk::window` through the harness: when windows
//! fire, allowed lateness and cleanup, dropped elements, session merging, the timers and
//! state they leave, sharing timers with the operator's own, and — on pseudo-random
//! out-of-order input run the way the host runs it — the same results as a straightforward
//! batch computation.

#![cfg(not(target_arch = "wasm32"))]
// Helpers outside `#[test]` functions are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use eddy_sdk::testing::{Emitted, Harness, RecordBuilder};
use eddy_sdk::window::{
    Aggregate, MergingAggregateFunction, Process, ProcessWindowFunction, Reduce, SessionWindows,
    SlidingWindows, TumblingWindows, Window, Windows,
};
use eddy_sdk::{
    AggregateFunction, Context, Error, ErrorKind, Operator, Record, StateRegistry, TimeDomain,
    Timer, ValueState,
};
use serde::Deserialize;

/// The ids of a window, in timestamp order.
struct Ids;

impl ProcessWindowFunction for Ids {
    type Input = u32;
    type Output = Vec<u32>;

    fn process(&self, key: &[u8], window: &Window, elements: Vec<(i64, u32)>) -> Vec<u32> {
        assert!(!key.is_empty());
        assert!(elements.iter().all(|(t, _)| window.contains(*t)));
        elements.into_iter().map(|(_, id)| id).collect()
    }
}

/// Counts elements.
#[derive(Clone, Copy)]
struct Count;

impl AggregateFunction for Count {
    type Input = u32;
    type Accumulator = u64;
    type Output = u64;

    fn create_accumulator(&self) -> u64 {
        0
    }

    fn add(&self, _: u32, count: &mut u64) {
        *count += 1;
    }

    fn get_result(&self, count: &u64) -> u64 {
        *count
    }
}

impl MergingAggregateFunction for Count {
    fn merge(&self, a: u64, b: u64) -> u64 {
        a + b
    }
}

/// The job's choice of windows (the operator's config).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(tag = "shape", rename_all = "kebab-case", deny_unknown_fields)]
enum Shape {
    Tumbling {
        size: i64,
        #[serde(default)]
        offset: i64,
        #[serde(default)]
        lateness: i64,
    },
    Sliding {
        size: i64,
        slide: i64,
        #[serde(default)]
        lateness: i64,
    },
    Session {
        gap: i64,
        #[serde(default)]
        lateness: i64,
    },
}

impl Shape {
    fn apply<F: eddy_sdk::window::WindowFunction>(
        self,
        windows: &mut Windows<F>,
    ) -> Result<(), Error> {
        match self {
            Shape::Tumbling {
                size,
                offset,
                lateness,
            } => windows.reconfigure(
                TumblingWindows::of(size)
                    .offset(offset)
                    .allowed_lateness(lateness),
            ),
            Shape::Sliding {
                size,
                slide,
                lateness,
            } => windows.reconfigure(SlidingWindows::of(size, slide).allowed_lateness(lateness)),
            Shape::Session { gap, lateness } => {
                windows.reconfigure(SessionWindows::with_gap(gap).allowed_lateness(lateness))
            }
        }
    }
}

/// Puts every record (value: a `u32` id) in three windows of one shape — process (`ids`),
/// reduce (`sum`) and aggregate (`count`) — and emits what fires as
/// `"{function} {start} {end} {result}[ late]"`, and `"dropped {id}"` for a dropped element.
///
/// A value `own T` registers an event-time timer of the operator's own at `T`; it emits
/// `"own T"` when it fires. A timer that is neither the operator's nor due for any of the
/// windows (one they no longer need) does nothing.
struct Probe {
    ids: Windows<Process<Ids>>,
    sum: Windows<Reduce<u64>>,
    count: Windows<Aggregate<Count>>,
    own: ValueState<Vec<i64>>,
}

fn emit<O: std::fmt::Debug>(
    ctx: &mut Context<'_>,
    function: &str,
    fired: &[eddy_sdk::window::Fired<O>],
) {
    for fired in fired {
        let late = if fired.late { " late" } else { "" };
        let line = format!(
            "{function} {} {} {:?}{late}",
            fired.window.start, fired.window.end, fired.result
        );
        // `[1, 2]` as `[1,2]`, so that a line splits at spaces.
        ctx.emit(ctx.key(), line.replace(", ", ","));
    }
}

impl Operator for Probe {
    const NAME: &'static str = "window-probe";
    const VERSION: &'static str = "0.1.0";

    fn open(states: &mut StateRegistry) -> Self {
        // Sessions by default, so that `count` is declared able to merge.
        let sessions = SessionWindows::with_gap(10);
        Self {
            ids: sessions.process(states, "ids", Ids),
            sum: sessions.reduce(states, "sum", |a: &u64, b: &u64| a + b),
            count: sessions.aggregate(states, "count", Count),
            own: states.value("own"),
        }
    }

    fn init(&mut self, config: &str) -> Result<(), Error> {
        if config.trim() == "{}" {
            return Ok(());
        }
        let shape: Shape = serde_json::from_str(config)
            .map_err(|e| Error::invalid_config(format!("probe config: {e}")))?;
        shape.apply(&mut self.ids)?;
        shape.apply(&mut self.sum)?;
        shape.apply(&mut self.count)
    }

    fn process(&mut self, ctx: &mut Context<'_>, record: &Record<'_>) -> Result<(), Error> {
        let value = record.value_str()?;
        if let Some(at) = value.strip_prefix("own ") {
            let at: i64 = at.parse()?;
            let mut own = self.own.get_or_default(ctx)?;
            own.push(at);
            self.own.set(ctx, &own)?;
            ctx.register_event_time_timer(at);
            return Ok(());
        }
        let id: u32 = value.parse()?;
        let ids = self.ids.add(ctx, id)?;
        let sum = self.sum.add(ctx, u64::from(id))?;
        let count = self.count.add(ctx, id)?;
        assert_eq!((sum.dropped, count.dropped), (ids.dropped, ids.dropped));
        if ids.dropped {
            ctx.emit(ctx.key(), format!("dropped {id}"));
        }
        emit(ctx, "ids", &ids.fired);
        emit(ctx, "sum", &sum.fired);
        emit(ctx, "count", &count.fired);
        Ok(())
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, timer: &Timer) -> Result<(), Error> {
        if let Some(fired) = self.ids.on_timer(ctx, timer)? {
            emit(ctx, "ids", &fired);
        }
        if let Some(fired) = self.sum.on_timer(ctx, timer)? {
            emit(ctx, "sum", &fired);
        }
        if let Some(fired) = self.count.on_timer(ctx, timer)? {
            emit(ctx, "count", &fired);
        }
        let mut own = self.own.get_or_default(ctx)?;
        if let Some(at) = own.iter().position(|t| *t == timer.timestamp) {
            own.remove(at);
            self.own.set(ctx, &own)?;
            ctx.emit(ctx.key(), format!("own {}", timer.timestamp));
        }
        Ok(())
    }
}

fn probe(config: &str) -> Harness<Probe> {
    let h = Harness::<Probe>::new().with_config(config);
    h.init_result().unwrap();
    h
}

/// Processes `value` for `key` at `timestamp` (at the harness's watermark).
fn add(h: &mut Harness<Probe>, key: &str, timestamp: i64, value: &str) -> Vec<String> {
    lines(
        h.process_record(RecordBuilder::new(key, value).timestamp(timestamp))
            .unwrap(),
    )
}

fn advance(h: &mut Harness<Probe>, watermark: i64) -> Vec<String> {
    lines(h.advance_watermark(watermark).unwrap())
}

/// `key: value` per emitted record, only the `ids` lines (the others are checked apart).
fn lines(emitted: Vec<Emitted>) -> Vec<String> {
    emitted
        .iter()
        .map(|e| format!("{}: {}", e.key_str().unwrap(), e.value_str().unwrap()))
        .filter(|line| !line.contains(": sum ") && !line.contains(": count "))
        .collect()
}

/// Every emitted line.
fn all_lines(emitted: Vec<Emitted>) -> Vec<String> {
    emitted
        .iter()
        .map(|e| format!("{}: {}", e.key_str().unwrap(), e.value_str().unwrap()))
        .collect()
}

fn event_timers(h: &Harness<Probe>, key: &str) -> Vec<i64> {
    h.timers()
        .into_iter()
        .filter(|(k, t)| k == key.as_bytes() && t.domain == TimeDomain::EventTime)
        .map(|(_, t)| t.timestamp)
        .collect()
}

type Stored<A> = Vec<(i64, i64, bool, A)>;

#[test]
fn describe_names_the_window_state_stably() {
    let h = Harness::<Probe>::new();
    let names: Vec<&str> = h.states().iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "ids/windows",
            "ids/elements",
            "sum/windows",
            "count/windows",
            "own"
        ]
    );
}

#[test]
fn tumbling_windows_fire_when_the_watermark_reaches_their_last_timestamp() {
    let mut h = probe(r#"{"shape":"tumbling","size":10}"#);
    assert!(add(&mut h, "a", 3, "1").is_empty());
    assert!(add(&mut h, "a", 9, "2").is_empty());
    assert!(add(&mut h, "b", 5, "3").is_empty());
    assert!(add(&mut h, "a", 10, "4").is_empty());
    assert!(add(&mut h, "a", 0, "5").is_empty());
    assert_eq!(event_timers(&h, "a"), [9, 19]);
    assert_eq!(
        h.value::<Stored<()>>("ids/windows", "a").unwrap(),
        Some(vec![(0, 10, true, ()), (10, 20, true, ())])
    );

    assert!(advance(&mut h, 8).is_empty());
    let fired = all_lines(h.advance_watermark(9).unwrap());
    assert_eq!(
        fired,
        [
            "a: ids 0 10 [5,1,2]",
            "a: sum 0 10 8",
            "a: count 0 10 3",
            "b: ids 0 10 [3]",
            "b: sum 0 10 3",
            "b: count 0 10 1",
        ]
    );
    // Lateness 0: fired and cleaned up at once.
    assert!(!h.has_state("b"));
    assert_eq!(
        h.value::<Stored<()>>("ids/windows", "a").unwrap(),
        Some(vec![(10, 20, true, ())])
    );
    assert_eq!(
        h.list::<(i64, u32)>("ids/elements", "a").unwrap(),
        [(10, 4)]
    );
    assert_eq!(event_timers(&h, "a"), [19]);

    assert_eq!(advance(&mut h, i64::MAX), ["a: ids 10 20 [4]"]);
    assert!(!h.has_state("a"));
    assert!(h.timers().is_empty());
}

#[test]
fn tumbling_windows_follow_their_offset() {
    let mut h = probe(r#"{"shape":"tumbling","size":10,"offset":3}"#);
    add(&mut h, "a", 2, "1");
    add(&mut h, "a", 3, "2");
    add(&mut h, "a", 12, "3");
    assert_eq!(
        advance(&mut h, i64::MAX),
        ["a: ids -7 3 [1]", "a: ids 3 13 [2,3]"]
    );
}

#[test]
fn equal_timestamps_keep_the_order_they_came_in() {
    let mut h = probe(r#"{"shape":"tumbling","size":10}"#);
    for id in ["3", "1", "2"] {
        add(&mut h, "a", 5, id);
    }
    add(&mut h, "a", 4, "9");
    assert_eq!(advance(&mut h, 9), ["a: ids 0 10 [9,3,1,2]"]);
}

#[test]
fn a_late_element_within_the_lateness_fires_its_window_again_at_once() {
    let mut h = probe(r#"{"shape":"tumbling","size":10,"lateness":5}"#);
    add(&mut h, "a", 1, "1");
    // Fire timer at 9, cleanup timer at 14.
    assert_eq!(event_timers(&h, "a"), [9, 14]);
    assert_eq!(advance(&mut h, 9), ["a: ids 0 10 [1]"]);
    assert_eq!(event_timers(&h, "a"), [14]);
    assert_eq!(
        h.value::<Stored<()>>("ids/windows", "a").unwrap(),
        Some(vec![(0, 10, false, ())])
    );

    // The watermark is 9: a record at 2 is late, but the window is kept until 14.
    assert_eq!(
        all_lines(
            h.process_record(RecordBuilder::new("a", "2").timestamp(2))
                .unwrap()
        ),
        [
            "a: ids 0 10 [1,2] late",
            "a: sum 0 10 3 late",
            "a: count 0 10 2 late"
        ]
    );
    assert_eq!(advance(&mut h, 13), Vec::<String>::new());
    assert_eq!(add(&mut h, "a", 9, "3"), ["a: ids 0 10 [1,2,3] late"]);
    // On-time elements of the next window are unaffected.
    assert!(add(&mut h, "a", 12, "4").is_empty());

    // Cleanup at 14: nothing fires, the state goes.
    assert!(advance(&mut h, 14).is_empty());
    assert_eq!(
        h.value::<Stored<()>>("ids/windows", "a").unwrap(),
        Some(vec![(10, 20, true, ())])
    );
    assert_eq!(
        h.list::<(i64, u32)>("ids/elements", "a").unwrap(),
        [(12, 4)]
    );
    // Later than the lateness: dropped, nothing changes.
    assert_eq!(add(&mut h, "a", 5, "5"), ["a: dropped 5"]);
    assert_eq!(
        h.list::<(i64, u32)>("ids/elements", "a").unwrap(),
        [(12, 4)]
    );
    assert_eq!(event_timers(&h, "a"), [19, 24]);
    assert_eq!(advance(&mut h, i64::MAX), ["a: ids 10 20 [4]"]);
    assert!(!h.has_state("a"));
}

#[test]
fn without_lateness_an_element_behind_the_watermark_is_dropped() {
    let mut h = probe(r#"{"shape":"tumbling","size":10}"#);
    add(&mut h, "a", 1, "1");
    assert_eq!(advance(&mut h, 9), ["a: ids 0 10 [1]"]);
    assert_eq!(add(&mut h, "a", 9, "2"), ["a: dropped 2"]);
    assert!(!h.has_state("a"));
    // An element behind the watermark whose window is not over is on time.
    add(&mut h, "b", 10, "3");
    advance(&mut h, 15);
    assert!(add(&mut h, "b", 11, "4").is_empty());
    assert_eq!(advance(&mut h, 19), ["b: ids 10 20 [3,4]"]);
}

#[test]
fn sliding_windows_share_elements_and_keep_them_until_their_last_window_goes() {
    let mut h = probe(r#"{"shape":"sliding","size":30,"slide":10}"#);
    add(&mut h, "a", 5, "1");
    add(&mut h, "a", 25, "2");
    assert_eq!(
        h.value::<Stored<u64>>("count/windows", "a").unwrap(),
        Some(vec![
            (-20, 10, true, 1),
            (-10, 20, true, 1),
            (0, 30, true, 2),
            (10, 40, true, 1),
            (20, 50, true, 1),
        ])
    );
    assert_eq!(event_timers(&h, "a"), [9, 19, 29, 39, 49]);
    assert_eq!(
        advance(&mut h, 29),
        [
            "a: ids -20 10 [1]",
            "a: ids -10 20 [1]",
            "a: ids 0 30 [1,2]"
        ]
    );
    // Element 1 is in no live window any more; element 2 is.
    assert_eq!(
        h.list::<(i64, u32)>("ids/elements", "a").unwrap(),
        [(25, 2)]
    );
    assert_eq!(
        advance(&mut h, i64::MAX),
        ["a: ids 10 40 [2]", "a: ids 20 50 [2]"]
    );
    assert!(!h.has_state("a"));
}

#[test]
fn sliding_windows_take_a_late_element_in_the_windows_still_open() {
    let mut h = probe(r#"{"shape":"sliding","size":20,"slide":10}"#);
    add(&mut h, "a", 12, "1");
    assert_eq!(advance(&mut h, 19), ["a: ids 0 20 [1]"]);
    // 15 is in [0, 20) (gone) and [10, 30) (open): it goes to the open one only.
    assert!(add(&mut h, "a", 15, "2").is_empty());
    assert_eq!(advance(&mut h, 29), ["a: ids 10 30 [1,2]"]);
}

#[test]
fn sliding_windows_with_gaps_ignore_elements_in_the_gaps() {
    let mut h = probe(r#"{"shape":"sliding","size":5,"slide":10}"#);
    assert!(add(&mut h, "a", 7, "1").is_empty());
    assert!(!h.has_state("a"));
    add(&mut h, "a", 12, "2");
    assert_eq!(advance(&mut h, i64::MAX), ["a: ids 10 15 [2]"]);
}

#[test]
fn an_element_bridging_two_sessions_merges_them() {
    let mut h = probe(r#"{"shape":"session","gap":10}"#);
    add(&mut h, "a", 0, "1");
    add(&mut h, "a", 5, "2"); // [0, 15)
    add(&mut h, "a", 20, "3"); // [20, 30)
    add(&mut h, "a", 35, "4"); // [35, 45)
    add(&mut h, "b", 12, "9");
    // [0, 10) grew to [0, 15): its timer at 9 stays, to find nothing due.
    assert_eq!(event_timers(&h, "a"), [9, 14, 29, 44]);
    assert_eq!(
        h.value::<Stored<u64>>("count/windows", "a").unwrap(),
        Some(vec![(0, 15, true, 2), (20, 30, true, 1), (35, 45, true, 1)])
    );
    // 12 is less than the gap from 5 and from 20: [0, 15) + [12, 22) + [20, 30) = [0, 30).
    add(&mut h, "a", 12, "5");
    assert_eq!(
        h.value::<Stored<u64>>("count/windows", "a").unwrap(),
        Some(vec![(0, 30, true, 4), (35, 45, true, 1)])
    );
    assert_eq!(
        h.value::<Stored<u64>>("sum/windows", "a").unwrap(),
        Some(vec![(0, 30, true, 11), (35, 45, true, 4)])
    );
    // The timers of the merged sessions stay, and find nothing due.
    assert_eq!(event_timers(&h, "a"), [9, 14, 29, 44]);
    assert_eq!(advance(&mut h, 28), ["b: ids 12 22 [9]"]);
    assert_eq!(event_timers(&h, "a"), [29, 44]);
    assert_eq!(
        all_lines(h.advance_watermark(29).unwrap()),
        ["a: ids 0 30 [1,2,5,3]", "a: sum 0 30 11", "a: count 0 30 4"]
    );
    assert_eq!(
        h.list::<(i64, u32)>("ids/elements", "a").unwrap(),
        [(35, 4)]
    );
    assert_eq!(advance(&mut h, i64::MAX), ["a: ids 35 45 [4]"]);
    assert!(h.timers().is_empty());
    assert!(!h.has_state("a") && !h.has_state("b"));
}

#[test]
fn sessions_exactly_a_gap_apart_stay_apart() {
    let mut h = probe(r#"{"shape":"session","gap":10}"#);
    add(&mut h, "a", 0, "1");
    add(&mut h, "a", 10, "2");
    add(&mut h, "a", 19, "3");
    assert_eq!(
        advance(&mut h, i64::MAX),
        ["a: ids 0 10 [1]", "a: ids 10 29 [2,3]"]
    );
}

#[test]
fn a_late_element_extends_a_fired_session_within_the_lateness() {
    let mut h = probe(r#"{"shape":"session","gap":10,"lateness":20}"#);
    add(&mut h, "a", 0, "1"); // [0, 10): fires at 9, cleaned up at 29
    assert_eq!(advance(&mut h, 12), ["a: ids 0 10 [1]"]);
    assert_eq!(event_timers(&h, "a"), [29]);

    // At watermark 12, an element at 5 makes [0, 15): its end is not reached yet, so it
    // fires when it is, not at once.
    assert!(add(&mut h, "a", 5, "2").is_empty());
    // The cleanup timer of [0, 10) stays, to find nothing due.
    assert_eq!(event_timers(&h, "a"), [14, 29, 34]);
    assert_eq!(advance(&mut h, 14), ["a: ids 0 15 [1,2]"]);

    // At watermark 14, an element at 1 is inside the fired session: it fires again at once.
    assert_eq!(add(&mut h, "a", 1, "3"), ["a: ids 0 15 [1,3,2] late"]);
    // Past the cleanup (34), an element that would have joined it opens a new session,
    // which is itself late: dropped.
    assert!(advance(&mut h, 34).is_empty());
    assert!(!h.has_state("a"));
    assert_eq!(add(&mut h, "a", 3, "4"), ["a: dropped 4"]);
    assert!(!h.has_state("a"));
    // One whose own session is not over is taken.
    assert!(add(&mut h, "a", 30, "5").is_empty());
    assert_eq!(advance(&mut h, i64::MAX), ["a: ids 30 40 [5]"]);
}

#[test]
fn before_any_watermark_nothing_is_late() {
    let mut h = probe(r#"{"shape":"tumbling","size":10}"#);
    assert_eq!(h.watermark(), eddy_sdk::NO_WATERMARK);
    assert!(add(&mut h, "a", i64::MIN + 5, "1").is_empty());
    assert!(add(&mut h, "a", -100, "2").is_empty());
    assert_eq!(
        advance(&mut h, -91),
        [
            format!("a: ids {} {} [1]", i64::MIN, i64::MIN + 10),
            "a: ids -100 -90 [2]".to_owned()
        ]
    );
}

#[test]
fn timers_of_the_windows_and_the_operator_are_told_apart_and_shared() {
    let mut h = probe(r#"{"shape":"tumbling","size":10}"#);
    add(&mut h, "a", 1, "1");
    add(&mut h, "a", 0, "own 5");
    add(&mut h, "a", 0, "own 9"); // the windows' timestamp too
    add(&mut h, "b", 0, "own 9");
    assert_eq!(advance(&mut h, 5), ["a: own 5"]);
    assert_eq!(
        advance(&mut h, 9),
        ["a: ids 0 10 [1]", "a: own 9", "b: own 9"]
    );
    // Processing-time timers are never the windows'.
    struct Only(Windows<Reduce<u64>>);
    impl Operator for Only {
        const NAME: &'static str = "only";
        const VERSION: &'static str = "0.1.0";
        fn open(states: &mut StateRegistry) -> Self {
            Only(TumblingWindows::of(10).reduce(states, "w", |a: &u64, b: &u64| a + b))
        }
        fn process(&mut self, ctx: &mut Context<'_>, _: &Record<'_>) -> Result<(), Error> {
            ctx.register_processing_time_timer(9);
            self.0.add(ctx, 1).map(drop)
        }
        fn on_timer(&mut self, ctx: &mut Context<'_>, timer: &Timer) -> Result<(), Error> {
            let verdict = match self.0.on_timer(ctx, timer)? {
                Some(fired) => format!("windows {}", fired.len()),
                None => "mine".to_owned(),
            };
            ctx.emit(ctx.key(), verdict);
            Ok(())
        }
    }
    let mut h = Harness::<Only>::new();
    h.process_record(RecordBuilder::new("k", "").timestamp(1))
        .unwrap();
    let processing = h.advance_processing_time(9).unwrap();
    assert_eq!(processing[0].value_str().unwrap(), "mine");
    let event = h.advance_watermark(9).unwrap();
    assert_eq!(event[0].value_str().unwrap(), "windows 1");
}

#[test]
fn cleanup_timers_say_they_are_the_windows_with_nothing_fired() {
    struct Lateness(Windows<Reduce<u64>>);
    impl Operator for Lateness {
        const NAME: &'static str = "lateness";
        const VERSION: &'static str = "0.1.0";
        fn open(states: &mut StateRegistry) -> Self {
            Lateness(TumblingWindows::of(10).allowed_lateness(10).reduce(
                states,
                "w",
                |a: &u64, b: &u64| a + b,
            ))
        }
        fn process(&mut self, ctx: &mut Context<'_>, _: &Record<'_>) -> Result<(), Error> {
            self.0.add(ctx, 1).map(drop)
        }
        fn on_timer(&mut self, ctx: &mut Context<'_>, timer: &Timer) -> Result<(), Error> {
            let fired = self.0.on_timer(ctx, timer)?.map(|fired| fired.len());
            ctx.emit(ctx.key(), format!("{} {fired:?}", timer.timestamp));
            Ok(())
        }
    }
    let mut h = Harness::<Lateness>::new();
    h.process_record(RecordBuilder::new("k", "").timestamp(1))
        .unwrap();
    let fired: Vec<String> = h
        .advance_watermark(i64::MAX)
        .unwrap()
        .iter()
        .map(|e| e.value_str().unwrap().to_owned())
        .collect();
    assert_eq!(fired, ["9 Some(1)", "19 Some(0)"]);
}

/// Minute counts (tumbling) and visit counts (sessions, 30 s gap) of every key in one
/// operator: both use the key's timers, and neither may take away one the other needs.
struct MinutesAndVisits {
    minutes: Windows<Reduce<u64>>,
    visits: Windows<Reduce<u64>>,
}

impl Operator for MinutesAndVisits {
    const NAME: &'static str = "minutes-and-visits";
    const VERSION: &'static str = "0.1.0";

    fn open(states: &mut StateRegistry) -> Self {
        Self {
            minutes: TumblingWindows::of(60_000).reduce(states, "minutes", |a, b| a + b),
            visits: SessionWindows::with_gap(30_000).reduce(states, "visits", |a, b| a + b),
        }
    }

    fn process(&mut self, ctx: &mut Context<'_>, _: &Record<'_>) -> Result<(), Error> {
        let minutes = self.minutes.add(ctx, 1)?;
        let visits = self.visits.add(ctx, 1)?;
        emit(ctx, "minute", &minutes.fired);
        emit(ctx, "visit", &visits.fired);
        Ok(())
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, timer: &Timer) -> Result<(), Error> {
        let minutes = self.minutes.on_timer(ctx, timer)?.unwrap_or_default();
        let visits = self.visits.on_timer(ctx, timer)?.unwrap_or_default();
        emit(ctx, "minute", &minutes);
        emit(ctx, "visit", &visits);
        Ok(())
    }
}

#[test]
fn windows_of_different_shapes_share_their_key_s_timers() {
    let mut h = Harness::<MinutesAndVisits>::new();
    let at = |h: &mut Harness<MinutesAndVisits>, timestamp: i64| {
        h.process_record(RecordBuilder::new("k", "").timestamp(timestamp))
            .unwrap()
    };
    assert!(at(&mut h, 30_000).is_empty());
    // The minute ends at 59 999, and so does the visit [30000, 60000) so far.
    assert!(at(&mut h, 40_000).is_empty());
    // The visit grew to [30000, 70000): the minute still needs the timer at 59 999.
    assert_eq!(
        all_lines(h.advance_watermark(59_999).unwrap()),
        ["k: minute 0 60000 2"]
    );
    assert_eq!(
        all_lines(h.advance_watermark(i64::MAX).unwrap()),
        ["k: visit 30000 70000 2"]
    );
    assert!(!h.has_state("k"));
    assert!(h.timers().is_empty());
}

/// Sessions (gap 10) that answer every timer with what `on_timer` said: `"{timestamp} {n}"`,
/// `n` the number of windows fired, or `None`. A value `own T` registers an event-time
/// timer at `T` instead of adding an element.
struct Answers(Windows<Reduce<u64>>);

impl Operator for Answers {
    const NAME: &'static str = "answers";
    const VERSION: &'static str = "0.1.0";

    fn open(states: &mut StateRegistry) -> Self {
        Answers(SessionWindows::with_gap(10).reduce(states, "w", |a: &u64, b: &u64| a + b))
    }

    fn process(&mut self, ctx: &mut Context<'_>, record: &Record<'_>) -> Result<(), Error> {
        if let Some(at) = record.value_str()?.strip_prefix("own ") {
            ctx.register_event_time_timer(at.parse()?);
            return Ok(());
        }
        self.0.add(ctx, 1).map(drop)
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, timer: &Timer) -> Result<(), Error> {
        let answer = match self.0.on_timer(ctx, timer)? {
            Some(fired) => fired.len().to_string(),
            None => "None".to_owned(),
        };
        ctx.emit(ctx.key(), format!("{} {answer}", timer.timestamp));
        Ok(())
    }
}

fn answers(h: &mut Harness<Answers>, watermark: i64) -> Vec<String> {
    h.advance_watermark(watermark)
        .unwrap()
        .iter()
        .map(|e| e.value_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_timer_with_nothing_due_is_none_to_the_windows() {
    let mut h = Harness::<Answers>::new();
    h.process_record(RecordBuilder::new("k", "").timestamp(0))
        .unwrap();
    // [0, 10) grows to [0, 15): the timer at 9 is left registered, and finds nothing due.
    h.process_record(RecordBuilder::new("k", "").timestamp(5))
        .unwrap();
    h.process_record(RecordBuilder::new("k", "own 12").timestamp(5))
        .unwrap();
    assert_eq!(answers(&mut h, 12), ["9 None", "12 None"]);
    assert_eq!(answers(&mut h, i64::MAX), ["14 1"]);
    assert!(h.timers().is_empty());
    assert!(!h.has_state("k"));
}

#[test]
fn any_timer_of_the_key_fires_the_windows_it_finds_overdue() {
    let mut h = Harness::<Answers>::new();
    // A session whose timer is missing (as a delete by an older SDK left some).
    h.set_value("w/windows", "k", &vec![(0_i64, 10_i64, true, 3_u64)])
        .unwrap();
    h.process_record(RecordBuilder::new("k", "own 20").timestamp(0))
        .unwrap();
    assert_eq!(answers(&mut h, 19), Vec::<String>::new());
    assert_eq!(answers(&mut h, 20), ["20 1"]);
    assert!(!h.has_state("k"));
}

#[test]
fn raising_the_allowed_lateness_between_runs_keeps_windows_until_the_new_cleanup() {
    let mut h = probe(r#"{"shape":"tumbling","size":10,"lateness":5}"#);
    add(&mut h, "a", 1, "1");
    assert_eq!(advance(&mut h, 9), ["a: ids 0 10 [1]"]);
    assert_eq!(event_timers(&h, "a"), [14]);

    // Restarted with a lateness of 20: [0, 10) is kept until 29, not 14.
    let mut h = h.with_config(r#"{"shape":"tumbling","size":10,"lateness":20}"#);
    h.init_result().unwrap();
    assert!(advance(&mut h, 14).is_empty());
    assert_eq!(event_timers(&h, "a"), [29]);
    assert_eq!(add(&mut h, "a", 2, "2"), ["a: ids 0 10 [1,2] late"]);
    assert!(advance(&mut h, 28).is_empty());
    assert!(h.has_state("a"));
    assert!(advance(&mut h, 29).is_empty());
    assert!(!h.has_state("a"));
    assert!(h.timers().is_empty());
}

#[test]
fn lowering_the_allowed_lateness_between_runs_cleans_up_at_the_key_s_next_element() {
    let mut h = probe(r#"{"shape":"tumbling","size":10,"lateness":20}"#);
    add(&mut h, "a", 1, "1");
    assert_eq!(advance(&mut h, 9), ["a: ids 0 10 [1]"]);
    assert_eq!(event_timers(&h, "a"), [29]);

    // Restarted with a lateness of 5: [0, 10) is over at 14. Its key's next element
    // registers that, which is due: the window goes before the key's next record.
    let mut h = h.with_config(r#"{"shape":"tumbling","size":10,"lateness":5}"#);
    h.init_result().unwrap();
    assert!(advance(&mut h, 15).is_empty());
    assert_eq!(add(&mut h, "a", 3, "2"), ["a: dropped 2"]);
    assert!(add(&mut h, "a", 12, "3").is_empty());
    assert_eq!(
        h.value::<Stored<()>>("ids/windows", "a").unwrap(),
        Some(vec![(10, 20, true, ())])
    );
    assert_eq!(
        h.list::<(i64, u32)>("ids/elements", "a").unwrap(),
        [(12, 3)]
    );
    assert_eq!(advance(&mut h, i64::MAX), ["a: ids 10 20 [3]"]);
    assert!(!h.has_state("a"));
    assert!(h.timers().is_empty());
}

#[test]
fn bad_parameters_fail_init_or_the_calls() {
    for (config, problem) in [
        (
            r#"{"shape":"tumbling","size":0}"#,
            "window `ids`: the window size must be positive, got 0 ms",
        ),
        (
            r#"{"shape":"sliding","size":10,"slide":0}"#,
            "window `ids`: the window size and slide must be positive, got 10 ms and 0 ms",
        ),
        (
            r#"{"shape":"session","gap":-1}"#,
            "window `ids`: the session gap must be positive, got -1 ms",
        ),
        (
            r#"{"shape":"tumbling","size":10,"lateness":-1}"#,
            "window `ids`: the allowed lateness must not be negative, got -1 ms",
        ),
    ] {
        let h = Harness::<Probe>::new().with_config(config);
        let error = h.init_result().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{config}");
        assert_eq!(error.message(), problem);
    }

    // Declared bad in `open` and never checked: the calls fail.
    struct Bad(Windows<Reduce<u64>>);
    impl Operator for Bad {
        const NAME: &'static str = "bad";
        const VERSION: &'static str = "0.1.0";
        fn open(states: &mut StateRegistry) -> Self {
            Bad(SlidingWindows::of(100_000, 10).reduce(states, "w", |a: &u64, b: &u64| a + b))
        }
        fn process(&mut self, ctx: &mut Context<'_>, _: &Record<'_>) -> Result<(), Error> {
            self.0.add(ctx, 1).map(drop)
        }
    }
    let mut h = Harness::<Bad>::new();
    let error = h.process("k", "").unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Failed);
    assert!(
        error.message().contains(
            "window `w`: a size of 100000 ms sliding by 10 ms puts every element in 10000 windows"
        ),
        "{error}"
    );
}

#[test]
fn sessions_need_a_merging_aggregate() {
    struct Plain;
    impl AggregateFunction for Plain {
        type Input = u32;
        type Accumulator = u64;
        type Output = u64;
        fn create_accumulator(&self) -> u64 {
            0
        }
        fn add(&self, _: u32, n: &mut u64) {
            *n += 1;
        }
        fn get_result(&self, n: &u64) -> u64 {
            *n
        }
    }
    let mut states = StateRegistry::default();
    let mut windows = TumblingWindows::of(10).aggregate(&mut states, "w", Plain);
    let error = windows
        .reconfigure(SessionWindows::with_gap(10))
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidConfig);
    assert!(
        error.message().contains("MergingAggregateFunction"),
        "{error}"
    );
    // Still tumbling.
    windows.reconfigure(TumblingWindows::of(20)).unwrap();
}

#[test]
fn an_error_after_add_discards_the_window_changes() {
    struct Fails(Windows<Reduce<u64>>);
    impl Operator for Fails {
        const NAME: &'static str = "fails";
        const VERSION: &'static str = "0.1.0";
        fn open(states: &mut StateRegistry) -> Self {
            Fails(TumblingWindows::of(10).reduce(states, "w", |a: &u64, b: &u64| a + b))
        }
        fn process(&mut self, ctx: &mut Context<'_>, record: &Record<'_>) -> Result<(), Error> {
            drop(self.0.add(ctx, 1)?);
            if record.value() == b"fail" {
                return Err(Error::failed("asked to"));
            }
            Ok(())
        }
    }
    let mut h = Harness::<Fails>::new();
    h.process_record(RecordBuilder::new("k", "fail").timestamp(1))
        .unwrap_err();
    assert!(!h.has_state("k"));
    assert!(h.timers().is_empty());
}

// -- out-of-order input against a batch computation -----------------------------------------

/// A deterministic pseudo-random sequence (a 64-bit LCG), so failures reproduce.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// One input record: key, timestamp, id.
#[derive(Debug, Clone, Copy)]
struct Input {
    key: &'static str,
    timestamp: i64,
    id: u32,
}

/// `n` records of 4 keys, timestamps rising by about `step` but each up to `disorder`
/// earlier than its place; every `late_every`-th record (0: none) is pushed back by up to
/// `late_by` more.
fn input(seed: u64, n: u32, step: i64, disorder: i64, late_every: u32, late_by: i64) -> Vec<Input> {
    let mut rng = Lcg(seed);
    let keys = ["a", "b", "c", "d"];
    let mut base = 1_000;
    (0..n)
        .map(|id| {
            base += rng.below(step as u64 * 2 + 1) as i64;
            let mut timestamp = base - rng.below(disorder as u64 + 1) as i64;
            if late_every != 0 && id % late_every == late_every - 1 {
                timestamp -= rng.below(late_by as u64 + 1) as i64;
            }
            Input {
                key: keys[rng.below(4) as usize],
                timestamp,
                id,
            }
        })
        .collect()
}

/// What a run gave: the emitted lines in order, the ids the host would have diverted as
/// late, and the watermark each record saw.
struct Run {
    lines: Vec<String>,
    diverted: Vec<u32>,
    watermarks: Vec<i64>,
}

/// Runs `records` the way the host does with `[event-time]`: the watermark a record sees is
/// the largest timestamp before it minus `max_out_of_orderness` minus 1; timers due at it
/// fire before the record; a record at or below the watermark minus `allowed_lateness` is
/// diverted; at the end the watermark goes to the maximum.
fn run(
    h: &mut Harness<Probe>,
    records: &[Input],
    max_out_of_orderness: i64,
    allowed_lateness: i64,
) -> Run {
    let mut run = Run {
        lines: Vec::new(),
        diverted: Vec::new(),
        watermarks: Vec::new(),
    };
    let mut max_timestamp = None::<i64>;
    for record in records {
        let watermark =
            max_timestamp.map_or(eddy_sdk::NO_WATERMARK, |max| max - max_out_of_orderness - 1);
        run.watermarks.push(watermark);
        run.lines
            .extend(all_lines(h.advance_watermark(watermark).unwrap()));
        if watermark != eddy_sdk::NO_WATERMARK && record.timestamp + allowed_lateness <= watermark {
            run.diverted.push(record.id);
            continue;
        }
        let emitted = h
            .process_record(
                RecordBuilder::new(record.key, record.id.to_string()).timestamp(record.timestamp),
            )
            .unwrap();
        run.lines.extend(all_lines(emitted));
        max_timestamp =
            Some(max_timestamp.map_or(record.timestamp, |max| max.max(record.timestamp)));
    }
    run.lines
        .extend(all_lines(h.advance_watermark(i64::MAX).unwrap()));
    run
}

/// The windows of `timestamp`, computed the plain way.
fn windows_of(shape: Shape, timestamp: i64) -> Vec<(i64, i64)> {
    match shape {
        Shape::Tumbling { size, offset, .. } => {
            let start = timestamp - (timestamp - offset).rem_euclid(size);
            vec![(start, start + size)]
        }
        Shape::Sliding { size, slide, .. } => {
            let mut windows = Vec::new();
            let mut start = timestamp - timestamp.rem_euclid(slide);
            while start + size > timestamp {
                windows.push((start, start + size));
                start -= slide;
            }
            windows
        }
        Shape::Session { .. } => unreachable!("sessions are computed per key"),
    }
}

/// A window of a key: (key, start, end).
type WindowOf = (String, i64, i64);

/// Per window, its elements as (timestamp, arrival, id).
type Expected = BTreeMap<WindowOf, Vec<(i64, usize, u32)>>;

/// The `ids` lines a batch computation expects, each window once, in (key, window) order.
fn batch_lines(expected: &Expected) -> Vec<String> {
    expected
        .iter()
        .map(|((key, start, end), elements)| {
            let mut elements = elements.clone();
            elements.sort();
            let ids: Vec<String> = elements.iter().map(|(_, _, id)| id.to_string()).collect();
            format!("{key}: ids {start} {end} [{}]", ids.join(","))
        })
        .collect()
}

/// The last `ids` firing of every window in a run, in (key, window) order, and how many
/// times each fired.
fn last_firings(lines: &[String]) -> (Vec<String>, BTreeMap<WindowOf, usize>) {
    let mut last = BTreeMap::new();
    let mut counts = BTreeMap::new();
    for line in lines {
        let Some((key, rest)) = line.split_once(": ids ") else {
            continue;
        };
        let mut words = rest.split(' ');
        let start: i64 = words.next().unwrap().parse().unwrap();
        let end: i64 = words.next().unwrap().parse().unwrap();
        let ids = words.next().unwrap();
        let id = (key.to_owned(), start, end);
        last.insert(id.clone(), format!("{key}: ids {start} {end} {ids}"));
        *counts.entry(id).or_insert(0) += 1;
    }
    (last.into_values().collect(), counts)
}

/// Every `sum` and `count` firing must agree with the `ids` firing before it.
fn check_functions_agree(lines: &[String]) {
    let mut ids_of = BTreeMap::new();
    for line in lines {
        let (key, rest) = line.split_once(": ").unwrap();
        let mut words = rest.split(' ');
        let function = words.next().unwrap();
        let window = (key, words.next().unwrap(), words.next().unwrap());
        let result = words.next().unwrap();
        match function {
            "ids" => {
                let ids: Vec<u64> = result
                    .trim_matches(|c| c == '[' || c == ']')
                    .split(',')
                    .filter(|id| !id.is_empty())
                    .map(|id| id.parse().unwrap())
                    .collect();
                ids_of.insert(window, ids);
            }
            "sum" => assert_eq!(
                result.parse::<u64>().unwrap(),
                ids_of[&window].iter().sum::<u64>(),
                "{line}"
            ),
            "count" => assert_eq!(
                result.parse::<usize>().unwrap(),
                ids_of[&window].len(),
                "{line}"
            ),
            "own" | "dropped" => {}
            other => panic!("unexpected line {other}"),
        }
    }
}

/// Fixed windows on out-of-order input without late records: every window fires once, as
/// the batch computation has it, and no state or timer is left.
#[test]
fn fixed_windows_on_out_of_order_input_match_a_batch_computation() {
    let shapes = [
        r#"{"shape":"tumbling","size":100}"#,
        r#"{"shape":"tumbling","size":100,"offset":30}"#,
        r#"{"shape":"sliding","size":100,"slide":25}"#,
        r#"{"shape":"sliding","size":90,"slide":40}"#,
    ];
    for (seed, config) in shapes.iter().enumerate() {
        let shape: Shape = serde_json::from_str(config).unwrap();
        let disorder = 60;
        let records = input(seed as u64 + 7, 400, 10, disorder, 0, 0);
        let mut h = probe(config);
        let run = run(&mut h, &records, disorder, 0);
        assert!(
            run.diverted.is_empty(),
            "{config}: the input has no late record"
        );

        let mut expected = Expected::new();
        for (arrival, r) in records.iter().enumerate() {
            for (start, end) in windows_of(shape, r.timestamp) {
                expected
                    .entry((r.key.to_owned(), start, end))
                    .or_default()
                    .push((r.timestamp, arrival, r.id));
            }
        }
        let (last, counts) = last_firings(&run.lines);
        assert_eq!(last, batch_lines(&expected), "{config}");
        assert!(
            counts.values().all(|n| *n == 1),
            "{config}: fired once each"
        );
        check_functions_agree(&run.lines);
        assert!(h.timers().is_empty(), "{config}");
        for key in ["a", "b", "c", "d"] {
            assert!(!h.has_state(key), "{config}: {key} has state left");
        }
    }
}

/// Fixed windows with late records and allowed lateness: the host diverts records later
/// than the lateness; each window's last firing holds exactly the elements that reached it
/// before its cleanup, and it fired once on time plus once per late element.
#[test]
fn fixed_windows_with_late_records_match_a_batch_computation() {
    let shapes = [
        r#"{"shape":"tumbling","size":100,"lateness":150}"#,
        r#"{"shape":"sliding","size":100,"slide":50,"lateness":80}"#,
        r#"{"shape":"tumbling","size":100}"#,
    ];
    for (seed, config) in shapes.iter().enumerate() {
        let shape: Shape = serde_json::from_str(config).unwrap();
        let lateness = match shape {
            Shape::Tumbling { lateness, .. } | Shape::Sliding { lateness, .. } => lateness,
            Shape::Session { .. } => unreachable!(),
        };
        let disorder = 30;
        let records = input(seed as u64 + 70, 400, 10, disorder, 7, 200);
        let mut h = probe(config);
        let run = run(&mut h, &records, disorder, lateness);
        assert!(
            !run.diverted.is_empty(),
            "{config}: some records are diverted"
        );

        let mut expected = Expected::new();
        // Per window: whether an element came on time (one firing at the window's end),
        // and how many came late (one firing each).
        let mut on_time = BTreeMap::<WindowOf, bool>::new();
        let mut late = BTreeMap::<WindowOf, usize>::new();
        for (arrival, r) in records.iter().enumerate() {
            if run.diverted.contains(&r.id) {
                continue;
            }
            let watermark = run.watermarks[arrival];
            for (start, end) in windows_of(shape, r.timestamp) {
                let cleaned_up =
                    watermark != eddy_sdk::NO_WATERMARK && end - 1 + lateness <= watermark;
                if cleaned_up {
                    continue;
                }
                let id = (r.key.to_owned(), start, end);
                expected
                    .entry(id.clone())
                    .or_default()
                    .push((r.timestamp, arrival, r.id));
                if watermark != eddy_sdk::NO_WATERMARK && end - 1 <= watermark {
                    *late.entry(id).or_default() += 1;
                } else {
                    on_time.insert(id, true);
                }
            }
        }
        let firings: BTreeMap<WindowOf, usize> = expected
            .keys()
            .map(|id| {
                let n = usize::from(on_time.contains_key(id)) + late.get(id).copied().unwrap_or(0);
                (id.clone(), n)
            })
            .collect();
        assert!(
            late.values().any(|n| *n > 0) || lateness == 0,
            "{config}: late firings"
        );
        let (last, counts) = last_firings(&run.lines);
        assert_eq!(last, batch_lines(&expected), "{config}");
        assert_eq!(
            counts, firings,
            "{config}: on time once, then once per late element"
        );
        check_functions_agree(&run.lines);
        assert!(
            !run.lines.iter().any(|l| l.contains("dropped")),
            "{config}: with the job's lateness the windows', the host diverts every record they would drop"
        );
        assert!(h.timers().is_empty(), "{config}");
    }
}

/// Sessions on out-of-order input (with bridging elements) without late records: each
/// session fires once, as sorting each key's elements and cutting at gaps gives.
#[test]
fn sessions_on_out_of_order_input_match_a_batch_computation() {
    // (seed, gap, step, disorder): steps wide enough for sessions to end, disorder large
    // enough for elements to bridge them.
    for (seed, gap, step, disorder) in [(1, 25, 10, 120), (2, 40, 15, 150), (3, 15, 5, 80)] {
        let config = format!(r#"{{"shape":"session","gap":{gap}}}"#);
        let records = input(seed, 300, step, disorder, 0, 0);
        let mut h = probe(&config);
        let run = run(&mut h, &records, disorder, 0);
        assert!(run.diverted.is_empty());

        let mut by_key = BTreeMap::<&str, Vec<(i64, usize, u32)>>::new();
        for (arrival, r) in records.iter().enumerate() {
            by_key
                .entry(r.key)
                .or_default()
                .push((r.timestamp, arrival, r.id));
        }
        let mut expected = Expected::new();
        let mut merges = 0;
        for (key, mut elements) in by_key {
            elements.sort();
            let mut session: Vec<(i64, usize, u32)> = Vec::new();
            let mut flush = |session: &mut Vec<(i64, usize, u32)>| {
                if let (Some(first), Some(last)) = (session.first(), session.last()) {
                    expected.insert((key.to_owned(), first.0, last.0 + gap), session.clone());
                }
                session.clear();
            };
            for element in elements {
                if session.last().is_some_and(|last| element.0 >= last.0 + gap) {
                    flush(&mut session);
                }
                session.push(element);
            }
            flush(&mut session);
        }
        // Some element must have bridged two sessions for the test to mean anything: one
        // that came after a later element of its key that was more than a gap after the
        // one before it.
        for r in &records {
            let earlier: Vec<i64> = records
                .iter()
                .take_while(|o| o.id != r.id)
                .filter(|o| o.key == r.key)
                .map(|o| o.timestamp)
                .collect();
            let below = earlier.iter().filter(|t| **t <= r.timestamp).max();
            let above = earlier.iter().filter(|t| **t > r.timestamp).min();
            if let (Some(below), Some(above)) = (below, above)
                && above - below >= gap
                && r.timestamp - below < gap
                && above - r.timestamp < gap
            {
                merges += 1;
            }
        }
        assert!(merges > 0, "gap {gap}: no bridging element");

        let (last, counts) = last_firings(&run.lines);
        assert_eq!(last, batch_lines(&expected), "gap {gap}");
        assert!(
            counts.values().all(|n| *n == 1),
            "gap {gap}: fired once each"
        );
        check_functions_agree(&run.lines);
        assert!(h.timers().is_empty());
        for key in ["a", "b", "c", "d"] {
            assert!(!h.has_state(key));
        }
    }
}

#[test]
fn windows_fire_in_watermark_order() {
    let records = input(11, 300, 10, 40, 0, 0);
    let mut h = probe(r#"{"shape":"sliding","size":60,"slide":20}"#);
    let run = run(&mut h, &records, 40, 0);
    // Per key, the ends of the windows as they fire never go back.
    let mut last_end = BTreeMap::<String, i64>::new();
    for line in &run.lines {
        let Some((key, rest)) = line.split_once(": ids ") else {
            continue;
        };
        let end: i64 = rest.split(' ').nth(1).unwrap().parse().unwrap();
        let previous = last_end.insert(key.to_owned(), end).unwrap_or(i64::MIN);
        assert!(
            previous <= end,
            "{line} after a window ending at {previous}"
        );
    }
}
