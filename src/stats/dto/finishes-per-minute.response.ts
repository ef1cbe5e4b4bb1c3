import { ApiProperty } from '@nestjs/swagger';

export class FinishesInMinuteResponse {
  @ApiProperty({
    format: 'date-time',
    example: '2026-11-28T12:20:00.000Z',
    description: 'Start of the minute',
  })
  minute!: string;
  @ApiProperty({ type: 'integer', minimum: 0, example: 2310 }) completed!: number;
  @ApiProperty({ type: 'integer', minimum: 0, example: 4 }) failed!: number;
  @ApiProperty({ type: 'integer', minimum: 0, example: 0 }) cancelled!: number;
}

export class FinishesPerMinuteResponse {
  @ApiProperty({
    type: [FinishesInMinuteResponse],
    description:
      'One entry per minute, oldest first, zero-filled; the last is the current minute, still counting',
  })
  minutes!: FinishesInMinuteResponse[];
}
