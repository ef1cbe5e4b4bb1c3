import { api } from './api';

/** The registered job types' names, for the filters. */
export async function jobTypeNames(): Promise<string[]> {
  return (await api.jobTypes()).map((type) => type.job_type).sort();
}
