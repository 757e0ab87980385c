// Port planning before the start: a taken default moves (default + 10,000 first, then any free
// port), a taken port the user set fails at once naming its variable, and only the listeners this
// process runs are checked.
import { mkdtempSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Server } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { loadConfig } from '../../core/config/index.ts'
import { isTributaryError } from '../../core/errors.ts'
import type { PortProbe } from '../../main/ports.ts'
import { isPortFree, moveLine, planPorts, rememberPorts, rememberedPorts } from '../../main/ports.ts'
import { ROLES } from '../../main/roles.ts'

/** A probe that sees the given ports taken and records what it was asked. */
function probe(taken: number[]): PortProbe & { asked: number[] } {
  const asked: number[] = []
  const fn = async (_host: string, port: number): Promise<boolean> => {
    asked.push(port)
    return !taken.includes(port)
  }
  return Object.assign(fn, { asked })
}

describe('planPorts', () => {
  it('moves a taken default to the default plus 10,000, the same on every run', async () => {
    const env = {}
    for (let run = 0; run < 2; run++) {
      const { config, moves } = await planPorts(loadConfig(env), env, ROLES, probe([1883]))
      expect(config.mqttPort).toBe(11883)
      expect(config.apiPort).toBe(8080)
      expect(moves).toEqual([
        { name: 'mqtt', label: 'MQTT', variable: 'TRIBUTARY_MQTT_PORT', taken: 1883, port: 11883 },
      ])
    }
  })

  it('takes any free port (0) when the alternative is taken too', async () => {
    const { config, moves } = await planPorts(loadConfig({}), {}, ROLES, probe([5683, 15683]))
    expect(config.coapPort).toBe(0)
    expect(moves.map((m) => [m.variable, m.port])).toEqual([['TRIBUTARY_COAP_PORT', 0]])
    expect(moveLine(moves[0]!, 40000)).toBe(
      'CoAP: 5683 is taken, listening on 40000 (set TRIBUTARY_COAP_PORT to choose a port)',
    )
  })

  it('falls back to the port of the last run in this data dir when the alternative is taken', async () => {
    const { config, moves } = await planPorts(loadConfig({}), {}, ROLES, probe([1883, 11883]), {
      TRIBUTARY_MQTT_PORT: 40123,
    })
    expect(config.mqttPort).toBe(40123)
    expect(moves.map((m) => m.port)).toEqual([40123])
  })

  it('remembers only the ports that fell back to any free port', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tributary-ports-'))
    const move = { name: 'mqtt', label: 'MQTT', variable: 'TRIBUTARY_MQTT_PORT', taken: 1883 }
    rememberPorts(dir, [{ ...move, port: 11883, bound: 11883 }])
    expect(rememberedPorts(dir)).toEqual({})
    rememberPorts(dir, [{ ...move, port: 0, bound: 40123 }])
    expect(rememberedPorts(dir)).toEqual({ TRIBUTARY_MQTT_PORT: 40123 })
  })

  it('fails at once when ports the user set are taken, naming every variable', async () => {
    const env = { TRIBUTARY_API_PORT: '8080', TRIBUTARY_HTTP_PORT: '9999' }
    const err = await planPorts(loadConfig(env), env, ROLES, probe([8080, 9999, 1883])).catch(
      (e: unknown) => e,
    )
    expect(isTributaryError(err, 'PORT_IN_USE')).toBe(true)
    expect((err as Error).message).toContain(
      'the API listener cannot bind 0.0.0.0:8080 (the port is taken); set TRIBUTARY_API_PORT to another port',
    )
    expect((err as Error).message).toContain('set TRIBUTARY_HTTP_PORT to another port')
  })

  it('never moves a listener onto a port another listener was given', async () => {
    const env = { TRIBUTARY_API_PORT: '11883' }
    const { config } = await planPorts(loadConfig(env), env, ROLES, probe([1883]))
    expect(config.apiPort).toBe(11883)
    expect(config.mqttPort).toBe(0)
  })

  it('checks only the listeners of the roles that run, and leaves port 0 alone', async () => {
    const env = { TRIBUTARY_MANAGEMENT_PORT: '0' }
    const checked = probe([1883, 8080])
    const { moves } = await planPorts(loadConfig(env), env, ['processors'], checked)
    expect(moves).toEqual([])
    expect(checked.asked).toEqual([])
  })
})

describe('isPortFree', () => {
  const servers: Server[] = []
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))))
  })

  it('tells a listening TCP port from a free one', async () => {
    const server = createServer()
    servers.push(server)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as { port: number }).port
    expect(await isPortFree('127.0.0.1', port, false)).toBe(false)
    await new Promise((resolve) => server.close(resolve))
    servers.pop()
    expect(await isPortFree('127.0.0.1', port, false)).toBe(true)
  })
})
