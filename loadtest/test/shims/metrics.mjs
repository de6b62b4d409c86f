// Shim of `k6/metrics`: add() of Counter, Rate and Trend records the sample with its tags.
class Metric {
  constructor(name) {
    this.name = name;
  }

  add(value, tags = {}) {
    globalThis.k6shim.samples.push({ metric: this.name, value: Number(value), tags });
  }
}

export class Counter extends Metric {}
export class Rate extends Metric {}
export class Trend extends Metric {}
