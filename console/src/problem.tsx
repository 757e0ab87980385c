// An API refusal as the user sees it: the problem's title and detail, and each field's message.
import { ApiError } from './api.ts'

export function ProblemView({ error }: { error: unknown }) {
  if (error === undefined || error === null) return null
  const detail = error instanceof Error ? error.message : JSON.stringify(error)
  const problem =
    error instanceof ApiError ? error.problem : { title: 'Something went wrong', status: 0, detail }
  return (
    <div role="alert" class="problem">
      <strong>{problem.title}</strong>
      {problem.status > 0 && <span class="status"> ({problem.status})</span>}
      {problem.detail !== undefined && <p>{problem.detail}</p>}
      {problem.errors !== undefined && problem.errors.length > 0 && (
        <ul>
          {problem.errors.map((e) => (
            <li key={e.path}>
              <code>{e.path}</code>: {e.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  )
}
