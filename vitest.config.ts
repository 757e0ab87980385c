// Test tiers: unit (no services), contract (one suite per port, every implementation), integration
// (real services), e2e (a running tributary process driven by real clients).
// Files run TEST_WORKERS at a time (default 3), whatever their tier: each file that uses a shared
// service keeps to its own topic prefix, schema, tenants and ports. Most of an e2e file's time is
// waiting on processes and brokers, so three files keep two CPUs busy (docs/benchmarks.md, CI time).
import { defineConfig } from 'vitest/config'
import LongestFirst from './test/setup/sequencer.ts'

const services = './test/setup/services.ts'

export default defineConfig({
  test: {
    passWithNoTests: false,
    maxWorkers: Number(process.env.TEST_WORKERS || 3),
    sequence: { sequencer: LongestFirst },
    allowOnly: false,
    reporters: ['default', './test/setup/tier-summary.ts'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/**/*.contract.test.ts', 'test/**/*.int.test.ts', 'test/**/*.e2e.test.ts'],
          testTimeout: 10_000,
        },
      },
      {
        test: {
          name: 'contract',
          include: ['test/**/*.contract.test.ts'],
          globalSetup: [services],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/**/*.int.test.ts'],
          globalSetup: [services],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/**/*.e2e.test.ts'],
          globalSetup: [services],
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
})
