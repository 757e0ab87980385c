// File publications (docs/files.md#files-for-devices): an operator publishes an uploaded file to one
// device or to a folder that every device of the tenant sees, for devices to download; readers see
// where a file is published, managers publish and take back. Each change goes through the file
// metadata cache, so every process serves it at once.
import type { OpenAPIHono } from '@hono/zod-openapi'
import { createRoute } from '@hono/zod-openapi'
import type { FileLookups } from '../../core/blobs/file-cache.ts'
import { TributaryError } from '../../core/errors.ts'
import type { PublicationTarget } from '../../core/registry/files.ts'
import { requires } from '../auth.ts'
import type { ApiEnv } from '../env.ts'
import { FileDeviceParams, FileFolderParams, FileParams, FilePublications } from '../schemas.ts'
import { NO_CONTENT, READ_PROBLEMS, WRITE_PROBLEMS, jsonResponse, problems } from './common.ts'

const tags = ['files']
const PUBLICATIONS = '/api/v1/tenants/{tenant}/files/{id}/publications'

const list = createRoute({
  method: 'get',
  path: PUBLICATIONS,
  operationId: 'getFilePublications',
  tags,
  summary: 'Where a file is published for devices to download',
  middleware: [requires('reader')],
  request: { params: FileParams },
  responses: {
    200: jsonResponse(FilePublications, 'Its devices and folders.'),
    ...problems(...READ_PROBLEMS),
  },
})

const publishRoute = (kind: 'device' | 'folder') =>
  createRoute({
    method: 'put',
    path: `${PUBLICATIONS}/${kind}s/{${kind}}`,
    operationId: kind === 'device' ? 'publishFileToDevice' : 'publishFileToFolder',
    tags,
    summary:
      kind === 'device'
        ? 'Publish a file for one device to download'
        : 'Publish a file to a folder, for every device of the tenant to download',
    middleware: [requires('manager')],
    request: { params: kind === 'device' ? FileDeviceParams : FileFolderParams },
    responses: {
      200: jsonResponse(
        FilePublications,
        'Published (again: nothing changes); where the file is published now.',
      ),
      ...problems(...READ_PROBLEMS),
    },
  })

const unpublishRoute = (kind: 'device' | 'folder') =>
  createRoute({
    method: 'delete',
    path: `${PUBLICATIONS}/${kind}s/{${kind}}`,
    operationId: kind === 'device' ? 'unpublishFileFromDevice' : 'unpublishFileFromFolder',
    tags,
    summary: 'Take a publication back: devices no longer list or download the file through it',
    middleware: [requires('manager')],
    request: { params: kind === 'device' ? FileDeviceParams : FileFolderParams },
    responses: { 204: NO_CONTENT, ...problems(...WRITE_PROBLEMS) },
  })

const notFound = (id: string): TributaryError =>
  new TributaryError('REGISTRY_NOT_FOUND', `file ${JSON.stringify(id)} not found`)

export function filePublicationRoutes(
  app: OpenAPIHono<ApiEnv>,
  lookups: Pick<FileLookups, 'lookup' | 'publish' | 'unpublish'>,
): void {
  async function current(tenant: string, id: string) {
    const entry = await lookups.lookup(tenant, id)
    if (entry === undefined) throw notFound(id)
    return entry.publications
  }

  app.openapi(list, async (c) => {
    const { tenant, id } = c.req.valid('param')
    return c.json(await current(tenant, id), 200)
  })

  for (const kind of ['device', 'folder'] as const) {
    const target = (params: Record<string, string>): PublicationTarget =>
      kind === 'device' ? { device: params['device'] ?? '' } : { folder: params['folder'] ?? '' }

    app.openapi(publishRoute(kind), async (c) => {
      const params = c.req.valid('param')
      await lookups.publish(params.tenant, params.id, target(params), new Date())
      return c.json(await current(params.tenant, params.id), 200)
    })

    app.openapi(unpublishRoute(kind), async (c) => {
      const params = c.req.valid('param')
      if (!(await lookups.unpublish(params.tenant, params.id, target(params)))) {
        throw new TributaryError(
          'REGISTRY_NOT_FOUND',
          `file ${JSON.stringify(params.id)} is not published there`,
        )
      }
      return c.body(null, 204)
    })
  }
}
