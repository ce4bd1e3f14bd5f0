// The component side: what `eddy-sdk` resolves to when an operator is built into a
// component (the build maps the bare specifier here; Node resolves `eddy-sdk` to
// index.js, which imports no WIT). It puts the `eddy:operator/state` and `log` imports
// behind the SDK's host interface, turning their `state-error`s into StateError.

import {
  listAdd,
  listAddAll,
  listClear,
  listGet,
  listUpdate,
  mapClear,
  mapContains,
  mapEntries,
  mapGet,
  mapIsEmpty,
  mapKeys,
  mapPut,
  mapRemove,
  operatorListAdd,
  operatorListGet,
  operatorListUpdate,
  valueGet,
} from 'eddy:operator/state@0.4.0';
import { log } from 'eddy:operator/log@0.4.0';
import { clocklessDate } from './clock.js';
import { StateError } from './errors.js';
import { log as sdkLog, setDefaultHost } from './runtime.js';

/** An import's error (both engines throw an Error whose `payload` is the WIT variant) as a StateError. */
function stateError(error) {
  const payload = error !== null && typeof error === 'object' ? error.payload : undefined;
  if (payload !== null && typeof payload === 'object' && typeof payload.tag === 'string') {
    return new StateError(payload.tag, payload.val);
  }
  return error;
}

setDefaultHost({
  valueGet(state, key) {
    try {
      const value = valueGet(state, key);
      return value === undefined ? null : value;
    } catch (error) {
      throw stateError(error);
    }
  },
  mapGet(state, key, mapKey) {
    try {
      const value = mapGet(state, key, mapKey);
      return value === undefined ? null : value;
    } catch (error) {
      throw stateError(error);
    }
  },
  mapPut(state, key, mapKey, value) {
    try {
      mapPut(state, key, mapKey, value);
    } catch (error) {
      throw stateError(error);
    }
  },
  mapRemove(state, key, mapKey) {
    try {
      mapRemove(state, key, mapKey);
    } catch (error) {
      throw stateError(error);
    }
  },
  mapContains(state, key, mapKey) {
    try {
      return mapContains(state, key, mapKey);
    } catch (error) {
      throw stateError(error);
    }
  },
  mapIsEmpty(state, key) {
    try {
      return mapIsEmpty(state, key);
    } catch (error) {
      throw stateError(error);
    }
  },
  mapClear(state, key) {
    try {
      mapClear(state, key);
    } catch (error) {
      throw stateError(error);
    }
  },
  mapEntries(state, key, cursor, max) {
    try {
      return mapEntries(state, key, cursor, max);
    } catch (error) {
      throw stateError(error);
    }
  },
  mapKeys(state, key, cursor, max) {
    try {
      return mapKeys(state, key, cursor, max);
    } catch (error) {
      throw stateError(error);
    }
  },
  listGet(state, key) {
    try {
      return listGet(state, key);
    } catch (error) {
      throw stateError(error);
    }
  },
  listAdd(state, key, value) {
    try {
      listAdd(state, key, value);
    } catch (error) {
      throw stateError(error);
    }
  },
  listAddAll(state, key, values) {
    try {
      listAddAll(state, key, values);
    } catch (error) {
      throw stateError(error);
    }
  },
  listUpdate(state, key, values) {
    try {
      listUpdate(state, key, values);
    } catch (error) {
      throw stateError(error);
    }
  },
  listClear(state, key) {
    try {
      listClear(state, key);
    } catch (error) {
      throw stateError(error);
    }
  },
  operatorListGet(state) {
    try {
      return operatorListGet(state);
    } catch (error) {
      throw stateError(error);
    }
  },
  operatorListAdd(state, value) {
    try {
      operatorListAdd(state, value);
    } catch (error) {
      throw stateError(error);
    }
  },
  operatorListUpdate(state, values) {
    try {
      operatorListUpdate(state, values);
    } catch (error) {
      throw stateError(error);
    }
  },
  log(level, key, message) {
    log(level, key, message);
  },
});

// The engines differ in what a component can reach: QuickJS (built with its WASI stubbed)
// traps on reading the clock and has no console, SpiderMonkey has both. Make them agree,
// without traps: `console` goes to the host's log, and reading the clock is an error
// (clock.js).
const formatArg = (arg) => {
  if (typeof arg === 'string') return arg;
  if (arg instanceof Error) return `${arg.name}: ${arg.message}`;
  try {
    return JSON.stringify(arg) ?? String(arg);
  } catch {
    return String(arg);
  }
};
const toLog = (level) => (...args) => sdkLog(level, args.map(formatArg).join(' '));
globalThis.console = {
  log: toLog('info'),
  info: toLog('info'),
  warn: toLog('warn'),
  error: toLog('error'),
  debug: toLog('debug'),
  trace: toLog('trace'),
};
globalThis.Date = clocklessDate(Date);

export * from './index.js';
