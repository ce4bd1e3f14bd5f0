//! Guards the timer semantics of the SDK and its harness: event-time timers fire in
//! (timestamp, key) order, once each, with their key's state; deletes; duplicate
//! registrations; processing-time timers; timers registered while timers fire; and what an
//! error in `on_timer` leaves behind.

#![cfg(not(target_arch = "wasm32"))]
// Helpers outside `#[test]` functions are test code too.
#![allow(clippy::unwrap_used)]

use eddy_sdk::testing::{Emitted, Harness, RecordBuilder};
use eddy_sdk::{
    Context, Error, ErrorKind, NO_WATERMARK, Operator, Record, StateRegistry, TimeDomain, Timer,
    ValueState,
};

/// Commands are `verb[ arg]`:
/// - `reg T` / `del T`: register / delete an event-time timer at `T`;
/// - `preg T` / `pdel T`: the same for a processing-time timer;
/// - `note X`: remember `X` in the key's state (on_timer reports it);
/// - `chain D`: from now on, every timer of the key registers another one `D` ms later
///   (event time), unless it fires at or after 1000 or the next one would be negative;
/// - `drop T`: every timer of the key deletes the key's event-time timer at `T`;
/// - `fail` / `heal`: make the key's `on_timer` fail (after writing state and emitting) or
///   not;
/// - `wm`: emit the watermark and wall clock the record sees.
///
/// `on_timer` emits `"{domain} {timestamp} note={note} wm={watermark}"` and counts the
/// key's firings in `fired`.
struct Clock {
    note: ValueState<String>,
    chain: ValueState<i64>,
    drop: ValueState<i64>,
    fail: ValueState<bool>,
    fired: ValueState<u32>,
}

impl Operator for Clock {
    const NAME: &'static str = "clock";
    const VERSION: &'static str = "0.1.0";

    fn open(states: &mut StateRegistry) -> Self {
        Self {
            note: states.value("note"),
            chain: states.value("chain"),
            drop: states.value("drop"),
            fail: states.value("fail"),
            fired: states.value("fired"),
        }
    }

    fn process(&mut self, ctx: &mut Context<'_>, record: &Record<'_>) -> Result<(), Error> {
        let command = record.value_str()?;
        let (verb, arg) = command.split_once(' ').unwrap_or((command, ""));
        let number = || arg.parse::<i64>();
        match verb {
            "reg" => ctx.register_event_time_timer(number()?),
            "del" => ctx.delete_event_time_timer(number()?),
            "preg" => ctx.register_processing_time_timer(number()?),
            "pdel" => ctx.delete_processing_time_timer(number()?),
            "note" => self.note.set(ctx, &arg.to_owned())?,
            "chain" => self.chain.set(ctx, &number()?)?,
            "drop" => self.drop.set(ctx, &number()?)?,
            "fail" => self.fail.set(ctx, &true)?,
            "heal" => self.fail.clear(ctx)?,
            "wm" => {
                let seen = format!("wm={} now={}", ctx.watermark(), ctx.processing_time());
                ctx.emit(record.key(), seen);
            }
            other => return Err(Error::failed(format!("unknown command {other:?}"))),
        }
        Ok(())
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, timer: &Timer) -> Result<(), Error> {
        let fired = self.fired.get_or_default(ctx)? + 1;
        self.fired.set(ctx, &fired)?;
        let domain = match timer.domain {
            TimeDomain::EventTime => "event",
            TimeDomain::ProcessingTime => "processing",
        };
        assert_eq!(ctx.timestamp(), timer.timestamp);
        let note = self.note.get(ctx)?.unwrap_or_default();
        ctx.emit(
            ctx.key(),
            format!(
                "{domain} {} note={note} wm={}",
                timer.timestamp,
                ctx.watermark()
            ),
        );
        if let Some(delay) = self.chain.get(ctx)?
            && timer.timestamp < 1000
            && timer.timestamp + delay >= 0
        {
            ctx.register_event_time_timer(timer.timestamp + delay);
        }
        if let Some(at) = self.drop.get(ctx)? {
            ctx.delete_event_time_timer(at);
        }
        if self.fail.get(ctx)?.unwrap_or_default() {
            return Err(Error::failed("asked to fail"));
        }
        Ok(())
    }
}

fn send(h: &mut Harness<Clock>, key: &str, command: &str) {
    h.process(key, command).unwrap();
}

/// The emitted records as `key: value` lines.
fn lines(emitted: Vec<Emitted>) -> Vec<String> {
    emitted
        .iter()
        .map(|e| format!("{}: {}", e.key_str().unwrap(), e.value_str().unwrap()))
        .collect()
}

fn event(timestamp: i64) -> Timer {
    Timer {
        timestamp,
        domain: TimeDomain::EventTime,
    }
}

fn processing(timestamp: i64) -> Timer {
    Timer {
        timestamp,
        domain: TimeDomain::ProcessingTime,
    }
}

#[test]
fn event_time_timers_fire_in_timestamp_then_key_order_once_each() {
    let mut h = Harness::<Clock>::new();
    for (key, note) in [("b", "bee"), ("a", "ay"), ("c", "see")] {
        send(&mut h, key, &format!("note {note}"));
    }
    send(&mut h, "b", "reg 20");
    send(&mut h, "a", "reg 30");
    send(&mut h, "c", "reg 20");
    send(&mut h, "a", "reg 10");
    send(&mut h, "c", "reg 40");
    assert_eq!(
        h.timers(),
        [
            (b"a".to_vec(), event(10)),
            (b"b".to_vec(), event(20)),
            (b"c".to_vec(), event(20)),
            (b"a".to_vec(), event(30)),
            (b"c".to_vec(), event(40)),
        ]
    );

    assert_eq!(h.advance_watermark(9).unwrap(), []);
    assert_eq!(
        lines(h.advance_watermark(30).unwrap()),
        [
            "a: event 10 note=ay wm=30",
            "b: event 20 note=bee wm=30",
            "c: event 20 note=see wm=30",
            "a: event 30 note=ay wm=30",
        ]
    );
    assert_eq!(h.timers(), [(b"c".to_vec(), event(40))]);
    // Fired timers are gone: advancing again fires only what is left.
    assert_eq!(h.advance_watermark(30).unwrap(), []);
    assert_eq!(
        lines(h.advance_watermark(i64::MAX).unwrap()),
        [format!("c: event 40 note=see wm={}", i64::MAX)]
    );
    assert_eq!(h.value::<u32>("fired", "a").unwrap(), Some(2));
    assert_eq!(h.value::<u32>("fired", "c").unwrap(), Some(2));
    assert!(h.timers().is_empty());
}

#[test]
fn the_watermark_never_goes_back_and_records_see_it() {
    let mut h = Harness::<Clock>::new();
    assert_eq!(h.watermark(), NO_WATERMARK);
    assert_eq!(
        h.process_utf8("k", "wm").unwrap()[0].1,
        format!("wm={NO_WATERMARK} now=0")
    );
    h.advance_watermark(100).unwrap();
    h.advance_watermark(50).unwrap();
    assert_eq!(h.watermark(), 100);
    assert_eq!(h.process_utf8("k", "wm").unwrap()[0].1, "wm=100 now=0");
    // A timer at or below the watermark is due at once, whatever its value.
    assert_eq!(
        lines(h.process_record(RecordBuilder::new("k", "reg 7")).unwrap()),
        ["k: event 7 note= wm=100"]
    );
    assert_eq!(h.advance_watermark(0).unwrap(), []);
}

#[test]
fn a_deleted_timer_does_not_fire() {
    let mut h = Harness::<Clock>::new();
    send(&mut h, "k", "reg 10");
    send(&mut h, "k", "reg 20");
    send(&mut h, "j", "reg 10");
    send(&mut h, "k", "del 10");
    // Deleting a timer that does not exist, or another key's, changes nothing.
    send(&mut h, "k", "del 15");
    send(&mut h, "x", "del 20");
    assert_eq!(
        lines(h.advance_watermark(100).unwrap()),
        ["j: event 10 note= wm=100", "k: event 20 note= wm=100"]
    );
}

#[test]
fn registering_a_timer_twice_fires_it_once() {
    let mut h = Harness::<Clock>::new();
    send(&mut h, "k", "reg 10");
    send(&mut h, "k", "reg 10");
    // In one batch too.
    h.process_batch([
        RecordBuilder::new("k", "reg 10"),
        RecordBuilder::new("k", "reg 10"),
    ])
    .unwrap();
    assert_eq!(h.timers(), [(b"k".to_vec(), event(10))]);
    assert_eq!(
        lines(h.advance_watermark(10).unwrap()),
        ["k: event 10 note= wm=10"]
    );
    assert_eq!(h.value::<u32>("fired", "k").unwrap(), Some(1));
}

#[test]
fn register_then_delete_in_one_batch_applies_in_order() {
    let mut h = Harness::<Clock>::new();
    h.process_batch([
        RecordBuilder::new("k", "reg 10"),
        RecordBuilder::new("k", "del 10"),
        RecordBuilder::new("k", "reg 20"),
        RecordBuilder::new("j", "del 30"),
        RecordBuilder::new("j", "reg 30"),
    ])
    .unwrap();
    assert_eq!(
        h.timers(),
        [(b"k".to_vec(), event(20)), (b"j".to_vec(), event(30))]
    );
}

#[test]
fn a_failed_batch_registers_no_timer() {
    let mut h = Harness::<Clock>::new();
    h.process_batch([
        RecordBuilder::new("k", "reg 10"),
        RecordBuilder::new("k", "bogus"),
    ])
    .unwrap_err();
    assert!(h.timers().is_empty());
}

#[test]
fn processing_time_timers_follow_the_wall_clock_only() {
    let mut h = Harness::<Clock>::new();
    send(&mut h, "k", "preg 100");
    send(&mut h, "k", "reg 100");
    send(&mut h, "j", "preg 50");
    send(&mut h, "j", "preg 70");
    send(&mut h, "j", "pdel 70");
    assert_eq!(
        h.timers(),
        [
            (b"k".to_vec(), event(100)),
            (b"j".to_vec(), processing(50)),
            (b"k".to_vec(), processing(100)),
        ]
    );
    // The watermark fires only the event-time timer.
    assert_eq!(
        lines(h.advance_watermark(i64::MAX).unwrap()),
        [format!("k: event 100 note= wm={}", i64::MAX)]
    );
    assert_eq!(h.advance_processing_time(49).unwrap(), []);
    assert_eq!(
        h.process_utf8("k", "wm").unwrap()[0].1,
        format!("wm={} now=49", i64::MAX)
    );
    assert_eq!(
        lines(h.advance_processing_time(100).unwrap()),
        [
            format!("j: processing 50 note= wm={}", i64::MAX),
            format!("k: processing 100 note= wm={}", i64::MAX),
        ]
    );
    assert!(h.timers().is_empty());
    // The clock does not go back either.
    h.advance_processing_time(10).unwrap();
    assert_eq!(
        h.process_utf8("k", "wm").unwrap()[0].1,
        format!("wm={} now=100", i64::MAX)
    );
}

#[test]
fn timers_registered_while_firing_fire_in_the_same_advance_when_due() {
    let mut h = Harness::<Clock>::new();
    send(&mut h, "k", "chain 5");
    send(&mut h, "k", "reg 10");
    send(&mut h, "j", "reg 12");
    // 10 registers 15, 15 registers 20, 20 registers 25 (not due at 22).
    assert_eq!(
        lines(h.advance_watermark(22).unwrap()),
        [
            "k: event 10 note= wm=22",
            "j: event 12 note= wm=22",
            "k: event 15 note= wm=22",
            "k: event 20 note= wm=22",
        ]
    );
    assert_eq!(h.timers(), [(b"k".to_vec(), event(25))]);

    // A timer registered at or below the watermark while firing fires in the same advance,
    // from the front of the due timers after the call that registered it: one call takes k
    // at 25 (which registers 30) and m at 30 (which registers 10); the next m at 10 and k
    // at 30.
    send(&mut h, "m", "chain -20");
    send(&mut h, "m", "reg 30");
    assert_eq!(
        lines(h.advance_watermark(30).unwrap()),
        [
            "k: event 25 note= wm=30",
            "m: event 30 note= wm=30",
            "m: event 10 note= wm=30",
            "k: event 30 note= wm=30",
        ]
    );
    assert_eq!(h.timers(), [(b"k".to_vec(), event(35))]);
}

#[test]
fn a_timer_can_delete_a_later_timer_of_its_key() {
    let mut h = Harness::<Clock>::new();
    send(&mut h, "k", "reg 10");
    send(&mut h, "k", "reg 20");
    send(&mut h, "j", "reg 20");
    send(&mut h, "k", "drop 20");
    assert_eq!(
        lines(h.advance_watermark(50).unwrap()),
        ["k: event 10 note= wm=50", "j: event 20 note= wm=50"]
    );
}

#[test]
fn an_error_in_on_timer_keeps_the_timers_and_discards_the_call() {
    let mut h = Harness::<Clock>::new();
    send(&mut h, "a", "reg 10");
    send(&mut h, "a", "reg 20");
    send(&mut h, "k", "reg 20");
    send(&mut h, "k", "reg 30");
    send(&mut h, "k", "chain 500");
    send(&mut h, "k", "fail");

    // The first call takes a at 10 (a is in it already at 20); the second a and k at 20.
    let error = h.advance_watermark(100).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Failed);
    assert_eq!(error.message(), "timer 1 (EventTime 20): asked to fail");
    // The call before the failure stays.
    assert_eq!(h.value::<u32>("fired", "a").unwrap(), Some(1));
    // The failing call wrote `fired` (a's and k's) and registered 520: all discarded; its
    // timers and the later one are still registered.
    assert_eq!(h.value::<u32>("fired", "k").unwrap(), None);
    assert_eq!(
        h.timers(),
        [
            (b"a".to_vec(), event(20)),
            (b"k".to_vec(), event(20)),
            (b"k".to_vec(), event(30))
        ]
    );
    // The watermark did advance: records see it.
    assert_eq!(h.watermark(), 100);

    // k's due timers fire before its next record, and fail it.
    let error = h.process("k", "heal").unwrap_err();
    assert_eq!(error.message(), "timer 1 (EventTime 20): asked to fail");
    assert_eq!(h.value::<bool>("fail", "k").unwrap(), Some(true));
    h.set_value("fail", "k", &false).unwrap();
    assert_eq!(
        lines(h.advance_watermark(100).unwrap()),
        [
            "a: event 20 note= wm=100",
            "k: event 20 note= wm=100",
            "k: event 30 note= wm=100"
        ]
    );
    assert_eq!(h.value::<u32>("fired", "k").unwrap(), Some(2));
    assert_eq!(
        h.timers(),
        [(b"k".to_vec(), event(520)), (b"k".to_vec(), event(530))]
    );
}

#[test]
fn a_timer_due_when_registered_fires_before_its_key_s_next_record() {
    let mut h = Harness::<Clock>::new();
    h.advance_watermark(100).unwrap();
    // Alone: it fires right after the record, and what it emits comes with the record's.
    assert_eq!(
        lines(h.process_record(RecordBuilder::new("k", "reg 7")).unwrap()),
        ["k: event 7 note= wm=100"]
    );
    assert!(h.timers().is_empty());

    // In a batch: before the next record of its key (which then sees its effects), and
    // after the batch when no record of its key follows.
    let out = h
        .process_batch([
            RecordBuilder::new("k", "note a"),
            RecordBuilder::new("k", "reg 50"),
            RecordBuilder::new("j", "reg 60"),
            RecordBuilder::new("k", "note b"),
            RecordBuilder::new("k", "wm"),
        ])
        .unwrap();
    // Every due timer fires before the record of k (j's too).
    let out: Vec<Vec<String>> = out.into_iter().map(lines).collect();
    assert_eq!(
        out,
        [
            vec![],
            vec![],
            vec![],
            vec![
                "k: event 50 note=a wm=100".to_owned(),
                "j: event 60 note= wm=100".to_owned()
            ],
            vec!["k: wm=100 now=0".to_owned()],
        ]
    );
    assert_eq!(h.value::<u32>("fired", "k").unwrap(), Some(2));
    assert_eq!(
        h.value::<String>("note", "k").unwrap().as_deref(),
        Some("b")
    );
    assert!(h.timers().is_empty());
    // After the batch when no record of its key follows.
    let out = h
        .process_batch([
            RecordBuilder::new("j", "reg 70"),
            RecordBuilder::new("k", "note c"),
        ])
        .unwrap();
    let out: Vec<Vec<String>> = out.into_iter().map(lines).collect();
    assert_eq!(out, [vec![], vec!["j: event 70 note= wm=100".to_owned()]]);
    // Not due: it waits for the watermark.
    assert!(h.process("k", "reg 101").unwrap().is_empty());
    assert_eq!(h.timers(), [(b"k".to_vec(), event(101))]);
}

#[test]
fn a_failed_batch_undoes_the_timers_it_fired() {
    let mut h = Harness::<Clock>::new();
    h.advance_watermark(100).unwrap();
    h.process_batch([
        RecordBuilder::new("k", "reg 50"),
        RecordBuilder::new("k", "note x"),
        RecordBuilder::new("k", "bogus"),
    ])
    .unwrap_err();
    assert!(h.timers().is_empty());
    assert_eq!(h.value::<u32>("fired", "k").unwrap(), None);
    assert_eq!(h.value::<String>("note", "k").unwrap(), None);
}

#[test]
fn each_call_takes_the_due_timers_from_the_front_once_per_key() {
    let mut h = Harness::<Clock>::new();
    send(&mut h, "a", "chain 5");
    send(&mut h, "a", "reg 10");
    send(&mut h, "b", "reg 20");
    send(&mut h, "c", "reg 30");
    // The first call takes a at 10, b at 20 and c at 30; the timer a at 10 registers (15)
    // is due, and the front of the next call, and so on.
    assert_eq!(
        lines(h.advance_watermark(30).unwrap()),
        [
            "a: event 10 note= wm=30",
            "b: event 20 note= wm=30",
            "c: event 30 note= wm=30",
            "a: event 15 note= wm=30",
            "a: event 20 note= wm=30",
            "a: event 25 note= wm=30",
            "a: event 30 note= wm=30",
        ]
    );
    assert_eq!(h.timers(), [(b"a".to_vec(), event(35))]);
}

/// Registers an event-time timer at 10 for every record's key, and again whenever it fires,
/// counting the firings in `fired`.
struct Forever {
    fired: ValueState<u32>,
}

impl Operator for Forever {
    const NAME: &'static str = "forever";
    const VERSION: &'static str = "0.1.0";

    fn open(states: &mut StateRegistry) -> Self {
        Self {
            fired: states.value("fired"),
        }
    }

    fn process(&mut self, ctx: &mut Context<'_>, _: &Record<'_>) -> Result<(), Error> {
        ctx.register_event_time_timer(10);
        Ok(())
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, timer: &Timer) -> Result<(), Error> {
        let fired = self.fired.get_or_default(ctx)? + 1;
        self.fired.set(ctx, &fired)?;
        ctx.register_event_time_timer(timer.timestamp);
        Ok(())
    }
}

#[test]
fn an_operator_that_keeps_registering_the_timer_it_handles_is_stopped() {
    let mut h = Harness::<Forever>::new();
    let keys: Vec<String> = (0..1000).map(|n| format!("k{n:04}")).collect();
    h.process_batch(keys.iter().map(|key| RecordBuilder::new(key, "")))
        .unwrap();
    let error = h.advance_watermark(10).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Failed);
    assert!(
        error
            .message()
            .starts_with("more than 1000000 timers fired"),
        "{error}"
    );
    // Each call fired every key's timer once, until the limit; the timers are registered
    // still.
    assert_eq!(h.value::<u32>("fired", &keys[0]).unwrap(), Some(1000));
    assert_eq!(h.value::<u32>("fired", &keys[999]).unwrap(), Some(1000));
    assert_eq!(h.timers().len(), 1000);
}
