import { Controller, Get, Inject, Optional } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiSecurity, ApiTags } from '@nestjs/swagger';
import {
  HealthCheck,
  HealthCheckService,
  HealthIndicatorService,
  type HealthCheckResult,
  type HealthIndicatorResult,
} from '@nestjs/terminus';
import { Public } from '../common/api-key.guard';
import { ApiNotReady } from '../common/api-responses';
import { JobRepository } from '../persistence/job.repository';
import { ClaimLoopService } from '../worker/claim-loop.service';
import { RescuerService } from '../worker/rescuer.service';
import { LivenessResponse, ReadinessResponse } from './dto/health.response';

const DATABASE_CHECK_TIMEOUT_MS = 2_000;

/** Probes. Terminus answers 503 `shutting_down` for readiness once shutdown has begun. */
@ApiTags('operations')
@Public()
// No key needed, even with API_KEYS set: an empty security requirement says so.
@ApiSecurity({})
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    private readonly repository: JobRepository,
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
  @HealthCheck({ swaggerDocumentation: false })
  @ApiOperation({
    summary:
      'Readiness: the database answers and, in a worker, the claim loop is turning and rescue sweeps are completing',
  })
  @ApiOkResponse({ type: ReadinessResponse })
  @ApiNotReady(
    'Not ready: shutting down, database unreachable, worker loop stalled, or no rescue sweep completed for 5 ' +
      'intervals; checks tells which',
  )
  ready(): Promise<HealthCheckResult> {
    const { claimLoop, rescuer } = this;
    return this.health.check([
      () => this.databaseAnswers(),
      ...(claimLoop ? [() => this.workerLoopTurns(claimLoop)] : []),
      ...(rescuer ? [() => this.sweepsComplete(rescuer)] : []),
    ]);
  }

  private async databaseAnswers(): Promise<HealthIndicatorResult> {
    const database = this.indicators.check('database');
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.repository.ping(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('no answer within 2 s')), DATABASE_CHECK_TIMEOUT_MS);
        }),
      ]);
      return database.up();
    } catch (error) {
      return database.down({ reason: error instanceof Error ? error.message : 'unreachable' });
    } finally {
      clearTimeout(timer);
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
