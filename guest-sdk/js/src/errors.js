// Errors: the OperatorError an operator throws (or that any throw becomes), the StateError
// a state call fails with, and Trap, the one error that is not turned into a result.

/**
 * An error with the `operator-error` case it becomes at the component boundary:
 * `'failed'` (the record is dead-lettered), `'invalid-config'` (init refuses the
 * configuration) or `'unsupported'` (e.g. a migration the operator has no upgrade for).
 *
 * Any other value an operator throws becomes `'failed'` (in `init`: `'invalid-config'`)
 * with its message.
 */
export class OperatorError extends Error {
  /**
   * @param {'failed' | 'invalid-config' | 'unsupported'} kind
   * @param {string} message
   */
  constructor(kind, message) {
    super(message);
    this.name = 'OperatorError';
    this.kind = kind;
  }

  /** Processing failed: the host sends the record to the dead-letter output. */
  static failed(message) {
    return new OperatorError('failed', message);
  }

  /** The configuration given to `init` cannot be used. */
  static invalidConfig(message) {
    return new OperatorError('invalid-config', message);
  }

  /** The operation is not supported by this operator. */
  static unsupported(message) {
    return new OperatorError('unsupported', message);
  }

  /** The same error with `context` put in front of its message (`"{context}: {message}"`). */
  withContext(context) {
    return new OperatorError(this.kind, `${context}: ${this.message}`);
  }
}

/**
 * An error the host returned from a state call (the WIT `state-error`): `tag` is
 * `'bad-handle'`, `'bad-key'`, `'too-large'` or `'backend'`, `val` its payload.
 */
export class StateError extends Error {
  /**
   * @param {string} tag
   * @param {unknown} val
   */
  constructor(tag, val) {
    super(stateErrorMessage(tag, val));
    this.name = 'StateError';
    this.tag = tag;
    this.val = val;
  }
}

function stateErrorMessage(tag, val) {
  switch (tag) {
    case 'bad-handle':
      return `state handle ${val} names no declared state of the kind this call needs`;
    case 'bad-key':
      return `key index ${val} names no key of the current batch (keyed state is only reachable inside \`process\` and \`onTimer\`)`;
    case 'too-large':
      return `${val} bytes exceed the host's state limits`;
    case 'backend':
      return `state backend failed: ${val}`;
    default:
      return `state error ${tag}: ${val}`;
  }
}

/**
 * Thrown by {@link trap}: the SDK lets it through, and the engine turns an exception that
 * is not an `operator-error` into a trap of the instance.
 */
export class Trap extends Error {
  constructor(message) {
    super(message);
    this.name = 'Trap';
  }
}

/**
 * Traps the instance, as a Rust panic does: the host discards the batch's effects, builds
 * a fresh instance and re-runs the batch one record at a time; the record that traps alone
 * goes to the dead-letter output with `operator trapped: …` (the message itself does not
 * cross the boundary: the SDK logs it at `error` first). Prefer throwing an error, which
 * fails the record without losing the instance.
 * @param {string} [message]
 * @returns {never}
 */
export function trap(message = 'trap') {
  throw new Trap(message);
}

/**
 * The message of any thrown value: an `Error`'s message (with its name when that says
 * more than `Error`), or the value as text.
 * @param {unknown} error
 * @returns {string}
 */
export function messageOf(error) {
  try {
    if (error instanceof OperatorError || error instanceof StateError || error instanceof Trap) {
      return error.message;
    }
    if (error instanceof Error) {
      return error.name && error.name !== 'Error' ? `${error.name}: ${error.message}` : error.message;
    }
    return String(error);
  } catch {
    return 'an exception that cannot be shown';
  }
}

/**
 * `error` as an OperatorError: itself, or a new one of `kind` with its message.
 * @param {unknown} error
 * @param {'failed' | 'invalid-config' | 'unsupported'} [kind]
 * @returns {OperatorError}
 */
export function toOperatorError(error, kind = 'failed') {
  if (error instanceof OperatorError) return error;
  return new OperatorError(kind, messageOf(error));
}
