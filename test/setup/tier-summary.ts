// Vitest reporter: one line per test tier (vitest project) with passed/failed/skipped counts,
// and a failed run when any test was skipped or todo, or a selected tier ran no test at all:
// a green run must mean every tier really ran.
import type { Reporter, TestCase, TestModule, TestRunEndReason, TestSpecification, Vitest } from 'vitest/node'

const TIERS = ['unit', 'contract', 'integration', 'e2e']
const MAX_LISTED = 20

interface Tally {
  modules: number
  passed: number
  failed: number
  skipped: number
  todo: number
  /** skipped or todo tests, as "file > name" */
  notRun: string[]
}

const emptyTally = (): Tally => ({ modules: 0, passed: 0, failed: 0, skipped: 0, todo: 0, notRun: [] })

function count(tally: Tally, test: TestCase): void {
  const state = test.result().state
  if (state === 'passed') tally.passed += 1
  else if (state === 'failed') tally.failed += 1
  else if (state === 'skipped') {
    if (test.options.mode === 'todo') tally.todo += 1
    else tally.skipped += 1
    tally.notRun.push(
      `${test.module.relativeModuleId} > ${test.fullName}${test.options.mode === 'todo' ? ' (todo)' : ''}`,
    )
  }
}

export default class TierSummary implements Reporter {
  private vitest: Vitest | undefined

  /** tiers that had test files scheduled when the run started */
  private scheduled = new Set<string>()

  onInit(vitest: Vitest): void {
    this.vitest = vitest
  }

  onTestRunStart(specifications: ReadonlyArray<TestSpecification>): void {
    this.scheduled = new Set(specifications.map((specification) => specification.project.name))
  }

  onTestRunEnd(
    testModules: ReadonlyArray<TestModule>,
    errors: ReadonlyArray<unknown>,
    reason: TestRunEndReason,
  ): void {
    const tallies = new Map<string, Tally>()
    for (const name of this.vitest?.projects.map((project) => project.name) ?? [])
      tallies.set(name, emptyTally())
    for (const module of testModules) {
      const name = module.project.name
      const tally = tallies.get(name) ?? emptyTally()
      tallies.set(name, tally)
      tally.modules += 1
      for (const test of module.children.allTests()) count(tally, test)
    }

    // Filters narrow a run on purpose: files given on the command line leave other tiers empty,
    // and -t marks every test it does not match as skipped.
    const fileFilter =
      ((this.vitest as { filenamePattern?: string[] } | undefined)?.filenamePattern ?? []).length > 0
    const nameFilter = this.vitest?.config.testNamePattern !== undefined
    const problems: string[] = []
    const lines: string[] = []
    const order = (name: string): number => (TIERS.includes(name) ? TIERS.indexOf(name) : TIERS.length)
    for (const [name, tally] of [...tallies].sort(([a], [b]) => order(a) - order(b))) {
      const ran = tally.passed + tally.failed
      let verdict = tally.failed > 0 ? 'FAIL' : 'ok'
      const filteredOut = fileFilter && tally.modules === 0 && !this.scheduled.has(name)
      if (ran === 0 && !filteredOut) {
        verdict = 'FAIL'
        problems.push(`tier ${name} ran no test`)
      } else if (ran === 0) {
        verdict = errors.length > 0 ? 'not run (see the errors)' : 'no file matched the filter'
      }
      if (tally.todo > 0) problems.push(`tier ${name} has ${tally.todo} todo test(s)`)
      if (tally.skipped > 0 && !nameFilter) problems.push(`tier ${name} skipped ${tally.skipped} test(s)`)
      if (tally.todo > 0 || (tally.skipped > 0 && !nameFilter)) verdict = 'FAIL'
      lines.push(
        `  ${name.padEnd(12)} ${String(tally.passed).padStart(5)} passed ${String(tally.failed).padStart(4)} failed ` +
          `${String(tally.skipped + tally.todo).padStart(4)} skipped  ${verdict}`,
      )
    }

    const out: string[] = ['', 'Tiers:', ...lines]
    const notRun = [...tallies.values()].flatMap((tally) => tally.notRun)
    if (notRun.length > 0 && !nameFilter) {
      out.push('', 'Skipped or todo (remove the skip or write the test):')
      out.push(...notRun.slice(0, MAX_LISTED).map((test) => `  - ${test}`))
      if (notRun.length > MAX_LISTED) out.push(`  … and ${notRun.length - MAX_LISTED} more`)
    }
    if (reason === 'interrupted') out.push('', 'Run interrupted: counts are partial.')
    if (problems.length > 0) {
      process.exitCode = 1
      out.push('', `Run failed by tier-summary: ${problems.join('; ')}.`)
    }
    const total = [...tallies.values()].reduce(
      (sum, tally) => ({
        passed: sum.passed + tally.passed,
        failed: sum.failed + tally.failed,
        skipped: sum.skipped + tally.skipped + tally.todo,
      }),
      { passed: 0, failed: 0, skipped: 0 },
    )
    // Last line, plain, for tools that read a run's closing line.
    out.push('', `tests: ${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`, '')
    process.stdout.write(out.join('\n'))
  }
}
