// An operator has no clock: QuickJS (built with WASI stubbed) traps on reading it. The
// component build and the test harness replace `Date.now()`, `Date()` and `new Date()`
// with an error that says what to use instead, in both engines and in Node alike (an
// operator that reads the clock is not deterministic on replay either).

function noClock() {
  throw new Error(
    "an Eddy operator has no clock: use ctx.processingTime (the host's clock at the call) or record.timestamp",
  );
}

/** A `Date` that refuses to read the clock: `Date.now()`, `Date()`, `new Date()`. */
export function clocklessDate(RealDate) {
  const Clockless = new Proxy(RealDate, {
    apply: noClock,
    construct(target, args, newTarget) {
      if (args.length === 0) noClock();
      return Reflect.construct(target, args, newTarget === Clockless ? target : newTarget);
    },
    get(target, prop, receiver) {
      if (prop === 'now') return noClock;
      return Reflect.get(target, prop, receiver);
    },
  });
  return Clockless;
}
