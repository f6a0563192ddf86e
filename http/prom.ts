/**
 * The parts of prom-client fsm-px uses (registry, counter, gauge, histogram), loaded from their own files.
 * prom-client's index also loads its default process metrics (with `@opentelemetry/api`), Summary (tdigest), the
 * Pushgateway (node:http, node:https, node:zlib) and the cluster aggregator: ~0.03 CPU s of every command's
 * start-up (`analyze` included, which counts with these metrics) for nothing fsm-px calls. The classes are the
 * same ones the index exports; the types are the package's.
 * @module
 */
import type client from "prom-client";
import RegistryJs from "prom-client/lib/registry.js";
import CounterJs from "prom-client/lib/counter.js";
import GaugeJs from "prom-client/lib/gauge.js";
import HistogramJs from "prom-client/lib/histogram.js";

/** prom-client's Registry. */
export const Registry = RegistryJs as unknown as typeof client.Registry;
/** prom-client's Registry. */
export type Registry = client.Registry;
/** prom-client's registry content types. */
export type RegistryContentType = client.RegistryContentType;
/** prom-client's Counter. */
export const Counter = CounterJs as unknown as typeof client.Counter;
/** prom-client's Counter. */
export type Counter<T extends string = string> = client.Counter<T>;
/** prom-client's Gauge. */
export const Gauge = GaugeJs as unknown as typeof client.Gauge;
/** prom-client's Gauge. */
export type Gauge<T extends string = string> = client.Gauge<T>;
/** prom-client's Histogram. */
export const Histogram = HistogramJs as unknown as typeof client.Histogram;
/** prom-client's Histogram. */
export type Histogram<T extends string = string> = client.Histogram<T>;
