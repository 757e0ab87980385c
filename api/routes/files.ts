// Device file routes: list (cursor pages, by device or name prefix), metadata, content, a
// short-lived download URL, delete, and publications for devices (file-publications.ts).
// The content streams from the blob store as application/octet-stream (the file's own media type is
// in its metadata); readers may read, managers delete.
import type { OpenAPIHono } from '@hono/zod-openapi'
import { createRoute, z } from '@hono/zod-openapi'
import { Readable } from 'node:stream'
import type { BlobStore } from '../../core/blobs/blobs.ts'
import type { DownloadLinks } from '../../core/blobs/downloads.ts'
import type { FileLookups } from '../../core/blobs/file-cache.ts'
import { blobKey } from '../../core/blobs/keys.ts'
import { TributaryError } from '../../core/errors.ts'
import type { FileRecord, FileStore } from '../../core/registry/files.ts'
import type { RegistryService } from '../../core/registry/service.ts'
import { API_PREFIX, requires } from '../auth.ts'
import type { ApiEnv } from '../env.ts'
import {
  DeviceFile,
  FileDownloadUrl,
  FileListQuery,
  FileParams,
  FileUrlQuery,
  TenantParams,
  page,
} from '../schemas.ts'
import { NO_CONTENT, READ_PROBLEMS, jsonResponse, problems } from './common.ts'
import { filePublicationRoutes } from './file-publications.ts'

/** What the routes need: the registry's file metadata (lookups through its cache) and the blob store. */
export interface FilesDeps {
  readonly store: Pick<FileStore, 'list'>
  readonly lookups: FileLookups
  readonly blobs: Pick<BlobStore, 'get' | 'delete'>
  /** Download URLs; `base` is the device HTTP listener's URL as a client that reached `host` sees it. */
  readonly downloads: {
    readonly links: Pick<DownloadLinks, 'url'>
    readonly base: (host: string) => string | undefined
  }
}

const DeviceFilePage = page(DeviceFile, 'DeviceFilePage')
const tags = ['files']
const FILES = `${API_PREFIX}/tenants/{tenant}/files`

const list = createRoute({
  method: 'get',
  path: FILES,
  operationId: 'listFiles',
  tags,
  summary: "List a tenant's uploaded device files",
  middleware: [requires('reader')],
  request: { params: TenantParams, query: FileListQuery },
  responses: {
    200: jsonResponse(DeviceFilePage, 'A page of files, in id order.'),
    ...problems(...READ_PROBLEMS),
  },
})

const get = createRoute({
  method: 'get',
  path: `${FILES}/{id}`,
  operationId: 'getFile',
  tags,
  summary: "A file's metadata",
  middleware: [requires('reader')],
  request: { params: FileParams },
  responses: { 200: jsonResponse(DeviceFile, 'The file.'), ...problems(...READ_PROBLEMS) },
})

const content = createRoute({
  method: 'get',
  path: `${FILES}/{id}/content`,
  operationId: 'getFileContent',
  tags,
  summary: "A file's content",
  middleware: [requires('reader')],
  request: { params: FileParams },
  responses: {
    200: {
      description: 'The bytes the device uploaded (`Content-Disposition` carries its name).',
      content: { 'application/octet-stream': { schema: z.string().openapi({ format: 'binary' }) } },
    },
    ...problems(...READ_PROBLEMS),
  },
})

const downloadUrl = createRoute({
  method: 'get',
  path: `${FILES}/{id}/url`,
  operationId: 'getFileDownloadUrl',
  tags,
  summary: "A short-lived URL of a file's content",
  description:
    'A presigned S3 GET on the S3 store, else a signed URL of the device HTTP listener; either is bound to GET, the object and its expiry.',
  middleware: [requires('reader')],
  request: { params: FileParams, query: FileUrlQuery },
  responses: {
    200: jsonResponse(FileDownloadUrl, 'The URL, good until `expiresAt`.'),
    ...problems(...READ_PROBLEMS),
  },
})

const remove = createRoute({
  method: 'delete',
  path: `${FILES}/{id}`,
  operationId: 'deleteFile',
  tags,
  summary: 'Delete a file and its content',
  middleware: [requires('manager')],
  request: { params: FileParams },
  responses: { 204: NO_CONTENT, ...problems(...READ_PROBLEMS) },
})

const view = (file: FileRecord) => ({
  tenant: file.tenant,
  id: file.id,
  device: file.device,
  name: file.name,
  size: file.size,
  sha256: file.sha256 ?? '',
  contentType: file.contentType,
  uploadedAt: (file.uploadedAt ?? file.createdAt).toISOString(),
  createdAt: file.createdAt.toISOString(),
})

const fileNotFound = (id: string): TributaryError =>
  new TributaryError('REGISTRY_NOT_FOUND', `file ${JSON.stringify(id)} not found`)

export function fileRoutes(app: OpenAPIHono<ApiEnv>, registry: RegistryService, files: FilesDeps): void {
  async function uploaded(tenant: string, id: string): Promise<FileRecord> {
    const entry = await files.lookups.lookup(tenant, id)
    if (entry === undefined) throw fileNotFound(id)
    return entry.file
  }

  app.openapi(list, async (c) => {
    const { tenant } = c.req.valid('param')
    await registry.getTenant(tenant)
    const query = c.req.valid('query')
    const result = await files.store.list(tenant, query)
    return c.json({ items: result.items.map(view), next: result.next }, 200)
  })

  app.openapi(get, async (c) => {
    const { tenant, id } = c.req.valid('param')
    return c.json(view(await uploaded(tenant, id)), 200)
  })

  app.openapi(content, async (c) => {
    const { tenant, id } = c.req.valid('param')
    const file = await uploaded(tenant, id)
    const object = await files.blobs.get(blobKey(tenant, file.device, file.id))
    if (object === undefined) throw fileNotFound(id)
    c.header('content-type', 'application/octet-stream')
    c.header('content-length', String(object.info.size))
    c.header('content-disposition', `attachment; filename*=UTF-8''${encodeURIComponent(file.name)}`)
    c.header('x-content-type-options', 'nosniff')
    return c.body(Readable.toWeb(object.body) as ReadableStream, 200)
  })

  app.openapi(downloadUrl, async (c) => {
    const { tenant, id } = c.req.valid('param')
    const { expiresIn } = c.req.valid('query')
    const file = await uploaded(tenant, id)
    const host = new URL(c.req.url).hostname.replace(/^\[(.*)\]$/, '$1')
    const signed = await files.downloads.links.url({
      key: blobKey(tenant, file.device, file.id),
      filename: file.name,
      expiresInS: expiresIn,
      base: () => files.downloads.base(host),
    })
    c.header('cache-control', 'no-store')
    return c.json({ url: signed.url, method: 'GET' as const, expiresAt: signed.expiresAt.toISOString() }, 200)
  })

  app.openapi(remove, async (c) => {
    const { tenant, id } = c.req.valid('param')
    const file = await files.lookups.remove(tenant, id)
    if (file === undefined) throw fileNotFound(id)
    // The metadata goes first: a file is never listed without its content.
    await files.blobs.delete(blobKey(tenant, file.device, file.id))
    return c.body(null, 204)
  })

  filePublicationRoutes(app, files.lookups)
}
