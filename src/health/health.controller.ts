import { Controller, Get, Inject, Optional, ServiceUnavailableException } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiSecurity, ApiTags } from '@nestjs/swagger';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { Public } from '../common/api-key.guard';
import { ApiNotReady } from '../common/api-responses';
import { runsApi, type AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { JobRepository } from '../persistence/job.repository';
import { DatabaseUnavailableError } from '../persistence/persistence.errors';
import { SchemaVersion } from '../persistence/schema-version';
import { ClaimLoopService } from '../worker/claim-loop.service';
import { RescuerService } from '../worker/rescuer.service';
import { LivenessResponse, ReadinessResponse } from './dto/health.response';
import { DATABASE_CHECK_TIMEOUT_MS } from './readiness-limits';
import { ShutdownState } from './shutdown-state';

/** The readiness answer, in the shape of @nestjs/terminus: `info` holds the checks that are up, `error` the others. */
export interface ReadinessResult {
  status: 'ok' | 'error';
  info: HealthIndicatorResult;
  error: HealthIndicatorResult;
  details: HealthIndicatorResult;
}

interface Check {
  result: HealthIndicatorResult;
  /** A check that is down but not required is reported and does not make the process unready. */
  required: boolean;
}

/**
 * Probes. Liveness, readiness and "the database is down" are three different things:
 * - live: the process and its event loop answer; nothing else (a restart fixes neither a database
 *   outage nor a missing migration);
 * - ready: this process should be sent work: it is not shutting down, the database schema has every
 *   migration this code needs, and, in a worker, the claim loop turns and rescue sweeps complete;
 * - the database not answering is reported by readiness, but makes only a process without the API
 *   unready. An api that stayed ready answers with a prompt `503` and `Retry-After` during an outage;
 *   one taken out of its Service would leave clients with connection errors instead.
 */
@ApiTags('operations')
@Public()
// No key needed, even with API_KEYS set: an empty security requirement says so.
@ApiSecurity({})
@Controller('health')
export class HealthController {
  constructor(
    private readonly indicators: HealthIndicatorService,
    private readonly repository: JobRepository,
    private readonly schema: SchemaVersion,
    private readonly shutdown: ShutdownState,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Optional() @Inject(ClaimLoopService) private readonly claimLoop?: ClaimLoopService,
    @Optional() @Inject(RescuerService) private readonly rescuer?: RescuerService,
  ) {}

  @Get('live')
  @ApiOperation({ summary: 'Liveness: the process is up and its event loop answers' })
  @ApiOkResponse({ type: LivenessResponse })
  live(): LivenessResponse {
    return { status: 'ok' };
  }

  @Get('ready')
  @ApiOperation({
    summary:
      'Readiness: not shutting down, the schema has every migration of this code and, in a worker, the ' +
      'database answers, the claim loop is turning and rescue sweeps are completing. An api stays ready ' +
      'while the database is down (reported under error.database) and answers requests with 503.',
  })
  @ApiOkResponse({ type: ReadinessResponse })
  @ApiNotReady(
    'Not ready, with each check under `checks`: shutting down, schema missing migrations, or (in a worker) ' +
      'database unreachable, worker loop stalled, or no rescue sweep completed for 5 intervals',
  )
  async ready(): Promise<ReadinessResult> {
    const { claimLoop, rescuer } = this;
    const checks: Check[] = [
      { result: this.notShuttingDown(), required: true },
      ...(await Promise.all([
        this.databaseAnswers().then((result) => ({ result, required: !runsApi(this.config.role) })),
        this.schemaIsCurrent().then((result) => ({ result, required: true })),
      ])),
      ...(claimLoop ? [{ result: this.workerLoopTurns(claimLoop), required: true }] : []),
      ...(rescuer ? [{ result: this.sweepsComplete(rescuer), required: true }] : []),
    ];
    const answer: ReadinessResult = { status: 'ok', info: {}, error: {}, details: {} };
    let ready = true;
    for (const { result, required } of checks) {
      for (const [key, state] of Object.entries(result)) {
        answer.details[key] = state;
        if (state.status === 'up') answer.info[key] = state;
        else {
          answer.error[key] = state;
          if (required) ready = false;
        }
      }
    }
    if (!ready) throw new ServiceUnavailableException({ ...answer, status: 'error' });
    return answer;
  }

  private notShuttingDown(): HealthIndicatorResult {
    const shutdown = this.indicators.check('shutdown');
    return this.shutdown.isStopping
      ? shutdown.down({ reason: 'shutting down: no new work for this process' })
      : shutdown.up();
  }

  private async databaseAnswers(): Promise<HealthIndicatorResult> {
    const database = this.indicators.check('database');
    try {
      await withinCheckTimeout(this.repository.ping());
      return database.up();
    } catch (error) {
      return database.down({ reason: error instanceof Error ? error.message : 'unreachable' });
    }
  }

  private async schemaIsCurrent(): Promise<HealthIndicatorResult> {
    const schema = this.indicators.check('schema');
    try {
      const { missing, expected } = await withinCheckTimeout(this.schema.check());
      if (missing.length === 0) return schema.up({ migrations: expected });
      return schema.down({
        reason:
          `the database lacks ${missing.length} of the ${expected} migrations this version needs: ` +
          'run APP_ROLE=migrate (npm run migrate) with this version',
        missing,
      });
    } catch (error) {
      const reason =
        error instanceof DatabaseUnavailableError || error instanceof CheckTimeoutError
          ? 'unknown: the database does not answer'
          : `unknown: ${error instanceof Error ? error.message : String(error)}`;
      return schema.down({ reason });
    }
  }

  private sweepsComplete(rescuer: RescuerService): HealthIndicatorResult {
    const rescue = this.indicators.check('rescue');
    const ageMs = rescuer.sweepAgeMs();
    const last_completed_ms_ago = ageMs === null ? null : Math.round(ageMs);
    return rescuer.sweepsAreCurrent()
      ? rescue.up({ last_completed_ms_ago })
      : rescue.down({ reason: 'no rescue sweep has completed for several intervals', last_completed_ms_ago });
  }

  private workerLoopTurns(claimLoop: ClaimLoopService): HealthIndicatorResult {
    const worker = this.indicators.check('worker');
    return claimLoop.isAlive()
      ? worker.up({ live_attempts: claimLoop.liveAttempts() })
      : worker.down({ reason: 'the claim loop has stalled' });
  }
}

class CheckTimeoutError extends Error {
  constructor() {
    super(`no answer within ${DATABASE_CHECK_TIMEOUT_MS / 1000} s`);
  }
}

/** The answer of `work`, or a CheckTimeoutError once DATABASE_CHECK_TIMEOUT_MS has passed. */
async function withinCheckTimeout<T>(work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new CheckTimeoutError()), DATABASE_CHECK_TIMEOUT_MS);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
