//! Placeholder until the state-probe operator lands.
