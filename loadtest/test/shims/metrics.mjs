// Shim of `k6/metrics`: Counter.add() records the sample with its tags.
export class Counter {
  constructor(name) {
    this.name = name;
  }

  add(value, tags = {}) {
    globalThis.k6shim.samples.push({ metric: this.name, value, tags });
  }
}
