#ifndef CMPI_SHIM_H
#define CMPI_SHIM_H
// Open MPI defines these handles as macros over incomplete structs; Swift cannot import them.
// Each shim returns the handle so Swift code can pass it on.
#include <mpi.h>
static inline MPI_Comm     cmpi_comm_world(void)    { return MPI_COMM_WORLD; }
static inline MPI_Comm     cmpi_comm_null(void)     { return MPI_COMM_NULL; }
static inline MPI_Datatype cmpi_float(void)         { return MPI_FLOAT; }
static inline MPI_Datatype cmpi_double(void)        { return MPI_DOUBLE; }
static inline MPI_Datatype cmpi_int64(void)         { return MPI_INT64_T; }
static inline MPI_Datatype cmpi_byte(void)          { return MPI_BYTE; }
static inline MPI_Op       cmpi_op_sum(void)        { return MPI_SUM; }
static inline void        *cmpi_in_place(void)      { return MPI_IN_PLACE; }
static inline MPI_Status  *cmpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline MPI_Request  cmpi_request_null(void)  { return MPI_REQUEST_NULL; }
static inline MPI_Message  cmpi_message_null(void)  { return MPI_MESSAGE_NULL; }
#endif
