import { describe, expect, it } from 'vitest';
import { workflowRunUrl } from '../../common/links';

describe('workflowRunUrl: the one Web UI link builder', () => {
  it('links a workflow, or a run of it, with every part encoded', () => {
    expect(workflowRunUrl('http://127.0.0.1:18233', 'default', 'restore-recsys-2026-12-04T03:00:00Z')).toBe(
      'http://127.0.0.1:18233/namespaces/default/workflows/restore-recsys-2026-12-04T03%3A00%3A00Z',
    );
    expect(workflowRunUrl('https://ui.example/', 'prod ns', 'a/b', 'run-1')).toBe(
      'https://ui.example/namespaces/prod%20ns/workflows/a%2Fb/run-1/history',
    );
  });
});
