import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

export class ProblemFieldError {
  @ApiPropertyOptional({ description: 'Index of the job in a batch request', example: 3 }) index?: number;
  @ApiProperty({ example: 'payload.ms' }) field!: string;
  @ApiProperty({ example: 'ms must be an integer number' }) message!: string;
}

/** RFC 9457 problem details, the body of every error response (application/problem+json). */
export class ProblemResponse {
  @ApiProperty({ example: 'about:blank' }) type!: string;
  @ApiProperty({ example: 'Bad Request' }) title!: string;
  @ApiProperty({ example: 400 }) status!: number;
  @ApiProperty({ example: 'The request is invalid' }) detail!: string;
  @ApiProperty({ example: '/jobs' }) instance!: string;
  @ApiProperty({ description: 'Machine-readable error code', example: 'validation_failed' }) code!: string;
  @ApiPropertyOptional({ type: [ProblemFieldError] }) errors?: ProblemFieldError[];
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';
